using System.ClientModel;
using System.ClientModel.Primitives;
using System.Globalization;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;

namespace RoentGen.PairAug;

/// <summary>
/// Options of <see cref="LlmReportRewriter"/>: where the OpenAI-compatible chat-completions endpoint is, which model,
/// the instructions, sampling, retries and the cache. The API key is never an option: it is read from the environment
/// variable named by <see cref="ApiKeyVariable"/>.
/// </summary>
public sealed record LlmRewriterOptions
{
    /// <summary>
    /// PairAug's InterAug instruction, in this project's words: rewrite the report so that it conveys partially opposite
    /// meanings.
    /// </summary>
    public const string DefaultPartialOppositeInstruction =
        "Rewrite the following chest X-ray report so that it conveys partially opposite meanings: turn some of its findings into "
        + "their opposite (present into absent, absent into present, left into right, mild into severe, small into large) and keep "
        + "the other findings as they are. Write it as a radiologist would, keep the FINDINGS and IMPRESSION sections, and reply "
        + "with the rewritten report only.";

    /// <summary>
    /// PairAug's IntraAug instruction, in this project's words: rewrite the report so that it conveys the patient's changes
    /// in symptoms.
    /// </summary>
    public const string DefaultChangeInSymptomsInstruction =
        "Rewrite the following chest X-ray report of the same patient so that it conveys a change in the patient's symptoms: "
        + "let one or more of the findings that are present progress or regress (for example, an effusion that increases, "
        + "edema that improves, a pneumothorax that resolves) and add no new finding. Write it as a radiologist would, keep the "
        + "FINDINGS and IMPRESSION sections, and reply with the rewritten report only.";

    /// <summary>The system message sent before the instruction.</summary>
    public const string DefaultSystemPrompt = "You are an experienced radiologist who rewrites chest X-ray reports.";

    /// <summary>Base URL of the OpenAI-compatible API (e.g. http://localhost:8000/v1); requests go to {Endpoint}/chat/completions.</summary>
    public required Uri Endpoint { get; init; }
    /// <summary>Model name sent with each request.</summary>
    public required string Model { get; init; }
    /// <summary>Environment variable holding the API key (any non-empty value for an endpoint that needs none).</summary>
    public string ApiKeyVariable { get; init; } = "ROENTGEN_LLM_API_KEY";
    /// <summary>System message.</summary>
    public string SystemPrompt { get; init; } = DefaultSystemPrompt;
    /// <summary>Instruction of <see cref="RewriteOperation.PartialOpposite"/>; the report follows it after a blank line.</summary>
    public string PartialOppositeInstruction { get; init; } = DefaultPartialOppositeInstruction;
    /// <summary>Instruction of <see cref="RewriteOperation.ChangeInSymptoms"/>.</summary>
    public string ChangeInSymptomsInstruction { get; init; } = DefaultChangeInSymptomsInstruction;
    /// <summary>Sampling temperature (PairAug's released code: 0.5).</summary>
    public double Temperature { get; init; } = 0.5;
    /// <summary>Reply token limit (PairAug's released code: 300).</summary>
    public int MaxTokens { get; init; } = 300;
    /// <summary>Time one request may take before it counts as timed out (and is retried).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Attempts per rewrite, the first included (retries on HTTP 429, 5xx, timeouts and connection failures).</summary>
    public int MaxAttempts { get; init; } = 5;
    /// <summary>Wait before the first retry; it doubles each retry up to <see cref="MaxBackoff"/>. A Retry-After header replaces it.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Longest computed wait between retries (a server's Retry-After is honoured up to <see cref="MaxRetryAfter"/>).</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Longest Retry-After honoured; a longer one ends the attempts with an error.</summary>
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Folder of the disk cache (<see cref="RewriteCache"/>), or null for none.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>The instruction of an operation.</summary>
    public string InstructionFor(RewriteOperation op) => op switch
    {
        RewriteOperation.PartialOpposite => PartialOppositeInstruction,
        RewriteOperation.ChangeInSymptoms => ChangeInSymptomsInstruction,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "unknown rewrite operation"),
    };

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        if (!Endpoint.IsAbsoluteUri || Endpoint.Scheme is not ("http" or "https")) throw new ArgumentException($"Endpoint must be an absolute http(s) URL, got '{Endpoint}'");
        if (string.IsNullOrWhiteSpace(Model)) throw new ArgumentException("Model must name the model to ask");
        if (string.IsNullOrWhiteSpace(ApiKeyVariable)) throw new ArgumentException("ApiKeyVariable must name an environment variable");
        if (!(Temperature >= 0 && Temperature <= 2)) throw new ArgumentException($"Temperature must lie in [0, 2], got {Temperature}");
        if (MaxTokens < 1) throw new ArgumentException($"MaxTokens must be at least 1, got {MaxTokens}");
        if (RequestTimeout <= TimeSpan.Zero) throw new ArgumentException($"RequestTimeout must be positive, got {RequestTimeout}");
        if (MaxAttempts < 1) throw new ArgumentException($"MaxAttempts must be at least 1, got {MaxAttempts}");
        if (InitialBackoff < TimeSpan.Zero || MaxBackoff < InitialBackoff) throw new ArgumentException($"need 0 <= InitialBackoff <= MaxBackoff, got {InitialBackoff} and {MaxBackoff}");
    }
}

/// <summary>
/// The LLM endpoint failed: it gave an error that is not retried, or kept failing through every attempt. An
/// <see cref="IOException"/> (the endpoint is outside this program), so the command line reports it as a user error.
/// </summary>
public sealed class LlmEndpointException : IOException
{
    /// <summary>Creates the exception.</summary>
    public LlmEndpointException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// The LLM endpoint answered, but not with a usable chat completion (truncated JSON, no choice, empty content, a reply
/// cut off at the token limit). An
/// <see cref="IOException"/> like <see cref="LlmEndpointException"/>: what came over the wire was unusable.
/// </summary>
public sealed class LlmReplyException : IOException
{
    /// <summary>Creates the exception.</summary>
    public LlmReplyException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// Rewrites reports with an LLM behind any OpenAI-compatible chat-completions endpoint, through Microsoft.Extensions.AI's
/// <see cref="IChatClient"/> over the OpenAI provider. Each request sends the system prompt and the operation's
/// instruction followed by the report, with the configured temperature, token limit and the request's seed. Retries are
/// this class's own (the SDK's are off): HTTP 429 and 5xx, timeouts (<see cref="LlmRewriterOptions.RequestTimeout"/>)
/// and connection failures are retried with exponential backoff, honouring Retry-After; other HTTP errors and malformed
/// replies (a reply cut off at the token limit among them) end with <see cref="LlmEndpointException"/> or <see cref="LlmReplyException"/>. Every rewrite is stored in the
/// cache before it is returned, and a cached one is returned without a request. The API key is read once from the
/// environment and appears in no message, log or file.
/// </summary>
public sealed class LlmReportRewriter : IReportRewriter, IDisposable
{
    private readonly IChatClient _client;
    private readonly RewriteCache? _cache;
    private readonly string _apiKey;
    private readonly LastReplyPolicy _lastReply = new();

    /// <summary>A rewriter for the options.</summary>
    /// <exception cref="ArgumentException">The options are invalid, or the API key's environment variable is not set (the message names the variable, never a value).</exception>
    public LlmReportRewriter(LlmRewriterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _apiKey = Environment.GetEnvironmentVariable(options.ApiKeyVariable) is { Length: > 0 } k ? k
            : throw new ArgumentException($"the environment variable {options.ApiKeyVariable} is not set; it must hold the API key of the LLM endpoint "
                + "(any non-empty value for an endpoint that needs none)");
        var clientOptions = new OpenAIClientOptions
        {
            Endpoint = options.Endpoint,
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),                   // retries are ours (429, 5xx, timeouts, Retry-After)
            NetworkTimeout = options.RequestTimeout + options.RequestTimeout + TimeSpan.FromSeconds(10), // our per-request timeout fires first
        };
        clientOptions.AddPolicy(_lastReply, PipelinePosition.PerTry);
        _client = new ChatClient(options.Model, new ApiKeyCredential(_apiKey), clientOptions).AsIChatClient();
        _cache = options.CacheDirectory is null ? null : new RewriteCache(options.CacheDirectory);
    }

    /// <summary>The options.</summary>
    public LlmRewriterOptions Options { get; }

    /// <summary>The cache, or null.</summary>
    public RewriteCache? Cache => _cache;

    /// <summary>Requests sent to the endpoint so far (attempts included).</summary>
    public int RequestsSent => Volatile.Read(ref _requestsSent);
    private int _requestsSent;

    /// <inheritdoc />
    public string Name => $"llm:{Options.Model}";

    /// <summary>The instruction text that decides the reply (system prompt and instruction), as cached.</summary>
    public string InstructionText(RewriteOperation op) => Options.SystemPrompt + "\n\n" + Options.InstructionFor(op);

    /// <inheritdoc />
    /// <exception cref="LlmEndpointException">The endpoint failed through every attempt, or with an error that is not retried.</exception>
    /// <exception cref="LlmReplyException">The reply was not a usable chat completion.</exception>
    public async Task<ReportRewrite?> RewriteAsync(RewriteRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        string instruction = InstructionText(request.Operation);
        string key = RewriteCache.Key(Options.Model, instruction, request.Report, Options.Temperature, request.Seed, Options.MaxTokens);
        if (_cache?.TryGet(key) is { } hit)
            return new ReportRewrite(request.Id, request.Operation, request.Report, hit.Rewrite, Name, null, null, FromCache: true);

        string text = await AskAsync(request, cancellationToken).ConfigureAwait(false);
        _cache?.Put(new CachedRewrite(Options.Model, instruction, request.Report, Options.Temperature, request.Seed, Options.MaxTokens, text));
        return new ReportRewrite(request.Id, request.Operation, request.Report, text, Name, null, null);
    }

    private async Task<string> AskAsync(RewriteRequest request, CancellationToken cancellationToken)
    {
        var messages = new List<Microsoft.Extensions.AI.ChatMessage>
        {
            new(ChatRole.System, Options.SystemPrompt),
            new(ChatRole.User, Options.InstructionFor(request.Operation) + "\n\n" + request.Report),
        };
        var chatOptions = new ChatOptions { Temperature = (float)Options.Temperature, MaxOutputTokens = Options.MaxTokens, Seed = request.Seed };
        string where = $"{Options.Endpoint} (model {Options.Model})";
        string lastFailure = "";
        for (int attempt = 1; attempt <= Options.MaxAttempts; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TimeSpan? retryAfter = null;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(Options.RequestTimeout);
                ChatResponse response;
                try
                {
                    Interlocked.Increment(ref _requestsSent);
                    response = await _client.GetResponseAsync(messages, chatOptions, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    lastFailure = $"no reply within the request timeout of {Options.RequestTimeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s";
                    goto retry;
                }
                catch (ClientResultException e) when (e.Status == 429 || e.Status >= 500)
                {
                    lastFailure = $"HTTP {e.Status}";
                    retryAfter = RetryAfter(e);
                    goto retry;
                }
                catch (ClientResultException e) when (e.Status > 0)
                {
                    throw new LlmEndpointException(Scrub($"the LLM endpoint {where} refused the request with HTTP {e.Status} (not retried): {e.Message}"));
                }
                catch (ClientResultException e)
                {
                    // Status 0: no HTTP response at all (connection refused or reset): retried like a timeout.
                    lastFailure = Scrub($"no response ({e.InnerException?.Message ?? e.Message})");
                    goto retry;
                }
                catch (HttpRequestException e)
                {
                    lastFailure = Scrub($"no response ({e.Message})");
                    goto retry;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    throw new LlmReplyException(Scrub($"the LLM endpoint {where} sent a reply that is not a valid chat completion: {Diagnose(_lastReply.Body)} "
                        + $"({e.GetType().Name}: {e.Message}); expected JSON with a non-empty 'choices' list whose first message has text content"), e);
                }
                return Content(response, where);
            }
        retry:
            if (attempt == Options.MaxAttempts) break;
            if (retryAfter is { } ra && ra > Options.MaxRetryAfter)
                throw new LlmEndpointException($"the LLM endpoint {where} asked to retry after {ra.TotalSeconds:0} s, longer than MaxRetryAfter ({Options.MaxRetryAfter.TotalSeconds:0} s)");
            var backoff = TimeSpan.FromTicks(Math.Min(Options.MaxBackoff.Ticks, Options.InitialBackoff.Ticks * (1L << Math.Min(attempt - 1, 30))));
            await Task.Delay(retryAfter ?? backoff, cancellationToken).ConfigureAwait(false);
        }
        throw new LlmEndpointException($"the LLM endpoint {where} failed {Options.MaxAttempts} times; gave up (last failure: {lastFailure})");
    }

    // The reply's text, or a clear error for an empty choice list, a reply cut off at the token limit, or empty content.
    private string Content(ChatResponse response, string where)
    {
        if (response.Messages.Count == 0)
            throw new LlmReplyException($"the LLM endpoint {where} replied with an empty 'choices' list; expected one choice with the rewritten report");
        // A reply cut off by the token limit is part of a report: checking its labels would judge a fragment, and caching
        // it would hand the fragment to every rerun. The same request (same seed) would be cut off again, so it is not retried.
        if (response.FinishReason == Microsoft.Extensions.AI.ChatFinishReason.Length)
            throw new LlmReplyException($"the LLM endpoint {where} cut the reply off at the token limit (finish reason 'length', MaxTokens {Options.MaxTokens}) "
                + $"after {response.Text.Length} characters; expected a complete rewritten report: raise MaxTokens or shorten the instruction");
        string text = response.Text.Trim();
        if (text.Length == 0)
            throw new LlmReplyException($"the LLM endpoint {where} replied with empty content (finish reason: {response.FinishReason?.Value ?? "none"}); expected the rewritten report");
        return text;
    }

    private static TimeSpan? RetryAfter(ClientResultException e)
    {
        var raw = e.GetRawResponse();
        if (raw is null || !raw.Headers.TryGetValue("Retry-After", out var value) || value is null) return null;
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0) return TimeSpan.FromSeconds(seconds);
        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var when))
        {
            var wait = when - DateTimeOffset.UtcNow;
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }
        return null;
    }

    // What was wrong with a reply the SDK could not read.
    private static string Diagnose(string? body)
    {
        if (body is null) return "no reply body";
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object) return "the reply is not a JSON object";
            if (!doc.RootElement.TryGetProperty("choices", out var choices) || choices.ValueKind != System.Text.Json.JsonValueKind.Array) return "the reply has no 'choices' list";
            if (choices.GetArrayLength() == 0) return "the reply has an empty 'choices' list";
            return "the reply's JSON has an unexpected shape";
        }
        catch (System.Text.Json.JsonException) { return $"the reply is truncated or invalid JSON ({body.Length} characters)"; }
    }

    // Keeps the body of the last response (the SDK buffers non-streaming replies), to say what was wrong with a bad one.
    private sealed class LastReplyPolicy : PipelinePolicy
    {
        public string? Body { get; private set; }

        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            Body = null;
            ProcessNext(message, pipeline, currentIndex);
            Keep(message);
        }

        public override async ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            Body = null;
            await ProcessNextAsync(message, pipeline, currentIndex).ConfigureAwait(false);
            Keep(message);
        }

        private void Keep(PipelineMessage message)
        {
            try { Body = message.Response?.Content.ToString(); }
            catch (InvalidOperationException) { Body = null; }        // an unbuffered stream
        }
    }

    // Defence in depth: no message leaves this class with the key in it.
    private string Scrub(string message) => _apiKey.Length == 0 ? message : message.Replace(_apiKey, "***", StringComparison.Ordinal);

    /// <inheritdoc />
    public void Dispose() => _client.Dispose();
}
