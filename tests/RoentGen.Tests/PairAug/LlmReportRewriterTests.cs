using System.Diagnostics;
using System.Text.Json;
using RoentGen.PairAug;
using Xunit;
using Xunit.Abstractions;

namespace RoentGen.Tests.PairAug;

/// <summary>The LLM rewriter against a real chat-completions server on loopback, with faults.</summary>
public sealed class LlmReportRewriterTests : IDisposable
{
    private const string Report = "FINDINGS: Small left pleural effusion. Heart size is normal. No pneumothorax.\nIMPRESSION: Small left pleural effusion.";
    private const string Rewrite = "FINDINGS: Moderate left pleural effusion. Heart size is normal. No pneumothorax.\nIMPRESSION: Interval increase in the left pleural effusion.";

    // A key of its own per test class instance, in a variable of its own: parallel tests never share one.
    private readonly string _keyVariable = "ROENTGEN_TEST_LLM_KEY_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
    private readonly string _key = "sk-test-" + Guid.NewGuid().ToString("N");
    private readonly string _cacheDir = TestPaths.NewTempDir("llm-cache");

    private readonly ITestOutputHelper _output;

    public LlmReportRewriterTests(ITestOutputHelper output)
    {
        _output = output;
        Environment.SetEnvironmentVariable(_keyVariable, _key);
    }

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(_keyVariable, null);
        if (Directory.Exists(_cacheDir)) Directory.Delete(_cacheDir, true);
    }

    private LlmRewriterOptions Options(ChatCompletionsServer server, bool cache = false) => new()
    {
        Endpoint = server.BaseUri, Model = "test-model", ApiKeyVariable = _keyVariable,
        RequestTimeout = TimeSpan.FromSeconds(5), MaxAttempts = 4, InitialBackoff = TimeSpan.FromMilliseconds(20), MaxBackoff = TimeSpan.FromMilliseconds(200),
        CacheDirectory = cache ? _cacheDir : null,
    };

    private static RewriteRequest Request(RewriteOperation op = RewriteOperation.ChangeInSymptoms, long seed = 7) => new("r1", Report, op, seed);

    private void AssertNoKeyIn(Exception e)
    {
        _output.WriteLine($"{e.GetType().Name}: {e.Message}");
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            Assert.DoesNotContain(_key, x.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(_key, x.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_reply_is_returned_and_the_request_carries_the_key_instruction_temperature_tokens_and_seed()
    {
        using var server = new ChatCompletionsServer((_, _) => ChatCompletionsServer.Completion(Rewrite));
        using var rewriter = new LlmReportRewriter(Options(server));
        var rw = await rewriter.RewriteAsync(Request());
        Assert.NotNull(rw);
        Assert.Equal(Rewrite, rw.Rewritten);
        Assert.Equal("llm:test-model", rw.Source);
        Assert.Null(rw.IntendedLabelChanges);
        Assert.False(rw.FromCache);

        var seen = Assert.Single(server.Requests);
        Assert.Equal("/v1/chat/completions", seen.Path);
        Assert.Equal($"Bearer {_key}", seen.Authorization);
        using var body = JsonDocument.Parse(seen.Body);
        var root = body.RootElement;
        Assert.Equal("test-model", root.GetProperty("model").GetString());
        Assert.Equal(0.5, root.GetProperty("temperature").GetDouble(), 6);
        int maxTokens = root.TryGetProperty("max_completion_tokens", out var mct) ? mct.GetInt32() : root.GetProperty("max_tokens").GetInt32();
        Assert.Equal(300, maxTokens);
        Assert.Equal(7, root.GetProperty("seed").GetInt64());
        var messages = root.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal("system", messages[0].GetProperty("role").GetString());
        string user = messages[1].GetProperty("content").ValueKind == JsonValueKind.String
            ? messages[1].GetProperty("content").GetString()!
            : string.Concat(messages[1].GetProperty("content").EnumerateArray().Select(p => p.GetProperty("text").GetString()));
        Assert.StartsWith(LlmRewriterOptions.DefaultChangeInSymptomsInstruction, user, StringComparison.Ordinal);
        Assert.EndsWith(Report, user, StringComparison.Ordinal);
        Assert.Contains("change in the patient's symptoms", LlmRewriterOptions.DefaultChangeInSymptomsInstruction, StringComparison.Ordinal);
        Assert.Contains("partially opposite meanings", LlmRewriterOptions.DefaultPartialOppositeInstruction, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Http_429_is_retried_after_its_Retry_After_then_succeeds()
    {
        using var server = new ChatCompletionsServer((i, _) => i == 0
            ? ChatCompletionsServer.Error(429, new Dictionary<string, string> { ["Retry-After"] = "1" })
            : ChatCompletionsServer.Completion(Rewrite));
        using var rewriter = new LlmReportRewriter(Options(server));
        var sw = Stopwatch.StartNew();
        var rw = await rewriter.RewriteAsync(Request());
        Assert.Equal(Rewrite, rw!.Rewritten);
        Assert.Equal(2, server.Count);
        Assert.Equal(2, rewriter.RequestsSent);
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.9), $"Retry-After: 1 was not honoured (retried after {sw.Elapsed.TotalSeconds:0.000} s)");
    }

    [Fact]
    public async Task Http_500s_are_retried_with_backoff_then_succeed()
    {
        using var server = new ChatCompletionsServer((i, _) => i < 2 ? ChatCompletionsServer.Error(i == 0 ? 500 : 503) : ChatCompletionsServer.Completion(Rewrite));
        using var rewriter = new LlmReportRewriter(Options(server));
        var rw = await rewriter.RewriteAsync(Request());
        Assert.Equal(Rewrite, rw!.Rewritten);
        Assert.Equal(3, server.Count);
    }

    [Fact]
    public async Task Http_500_forever_gives_up_after_MaxAttempts_with_a_clear_error()
    {
        using var server = new ChatCompletionsServer((_, _) => ChatCompletionsServer.Error(500));
        using var rewriter = new LlmReportRewriter(Options(server));
        var e = await Assert.ThrowsAsync<LlmEndpointException>(() => rewriter.RewriteAsync(Request()));
        Assert.Equal(4, server.Count);
        Assert.Contains("failed 4 times", e.Message, StringComparison.Ordinal);
        Assert.Contains("HTTP 500", e.Message, StringComparison.Ordinal);
        Assert.Contains(server.BaseUri.Authority, e.Message, StringComparison.Ordinal);
        AssertNoKeyIn(e);
    }

    [Fact]
    public async Task A_client_error_is_not_retried_and_names_the_status()
    {
        using var server = new ChatCompletionsServer((_, _) => ChatCompletionsServer.Error(401));
        using var rewriter = new LlmReportRewriter(Options(server));
        var e = await Assert.ThrowsAsync<LlmEndpointException>(() => rewriter.RewriteAsync(Request()));
        Assert.Equal(1, server.Count);
        Assert.Contains("HTTP 401", e.Message, StringComparison.Ordinal);
        AssertNoKeyIn(e);
    }

    [Fact]
    public async Task A_reply_that_hangs_past_the_timeout_is_retried()
    {
        using var server = new ChatCompletionsServer((i, _) => i == 0
            ? ChatCompletionsServer.Completion(Rewrite) with { Delay = TimeSpan.FromSeconds(10) }
            : ChatCompletionsServer.Completion(Rewrite));
        using var rewriter = new LlmReportRewriter(Options(server) with { RequestTimeout = TimeSpan.FromMilliseconds(400) });
        var sw = Stopwatch.StartNew();
        var rw = await rewriter.RewriteAsync(Request());
        Assert.Equal(Rewrite, rw!.Rewritten);
        Assert.Equal(2, server.Count);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(8), $"the hung request was not cut at the timeout ({sw.Elapsed.TotalSeconds:0.0} s)");
    }

    [Fact]
    public async Task A_server_that_always_hangs_gives_up_naming_the_timeout()
    {
        using var server = new ChatCompletionsServer((_, _) => ChatCompletionsServer.Completion(Rewrite) with { Delay = TimeSpan.FromSeconds(10) });
        using var rewriter = new LlmReportRewriter(Options(server) with { RequestTimeout = TimeSpan.FromMilliseconds(200), MaxAttempts = 2 });
        var e = await Assert.ThrowsAsync<LlmEndpointException>(() => rewriter.RewriteAsync(Request()));
        Assert.Equal(2, server.Count);
        Assert.Contains("request timeout", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancelling_a_hung_request_stops_at_once_and_is_not_retried()
    {
        using var server = new ChatCompletionsServer((_, _) => ChatCompletionsServer.Completion(Rewrite) with { Delay = TimeSpan.FromSeconds(10) });
        using var rewriter = new LlmReportRewriter(Options(server) with { RequestTimeout = TimeSpan.FromSeconds(30) });
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var sw = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rewriter.RewriteAsync(Request(), cts.Token));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"cancellation took {sw.Elapsed.TotalSeconds:0.0} s");
        // Not retried: at most the one request (on a loaded machine the 300 ms may end before it reaches the server), and
        // none arrives after the cancellation.
        await Task.Delay(500);
        Assert.InRange(server.Count, 0, 1);
    }

    [Fact]
    public async Task A_Retry_After_longer_than_allowed_ends_with_a_clear_error()
    {
        using var server = new ChatCompletionsServer((_, _) => ChatCompletionsServer.Error(429, new Dictionary<string, string> { ["Retry-After"] = "3600" }));
        using var rewriter = new LlmReportRewriter(Options(server) with { MaxRetryAfter = TimeSpan.FromSeconds(10) });
        var e = await Assert.ThrowsAsync<LlmEndpointException>(() => rewriter.RewriteAsync(Request()));
        Assert.Equal(1, server.Count);
        Assert.Contains("retry after 3600 s", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Truncated_json_is_a_clear_reply_error_and_is_not_retried()
    {
        var full = ChatCompletionsServer.Completion(Rewrite);
        using var server = new ChatCompletionsServer((_, _) => full with { Body = full.Body[..(full.Body.Length / 2)] });
        using var rewriter = new LlmReportRewriter(Options(server, cache: true));
        var e = await Assert.ThrowsAsync<LlmReplyException>(() => rewriter.RewriteAsync(Request()));
        Assert.Equal(1, server.Count);
        Assert.Contains("not a valid chat completion", e.Message, StringComparison.Ordinal);
        Assert.Contains("truncated or invalid JSON", e.Message, StringComparison.Ordinal);
        AssertNoKeyIn(e);
        Assert.Equal(0, rewriter.Cache!.Count);                 // nothing cached from a bad reply
    }

    [Fact]
    public async Task An_empty_choice_list_is_a_clear_reply_error()
    {
        using var server = new ChatCompletionsServer((_, _) => ChatCompletionsServer.NoChoices());
        using var rewriter = new LlmReportRewriter(Options(server));
        var e = await Assert.ThrowsAsync<LlmReplyException>(() => rewriter.RewriteAsync(Request()));
        Assert.Equal(1, server.Count);
        Assert.Contains("empty 'choices' list", e.Message, StringComparison.Ordinal);
        AssertNoKeyIn(e);
    }

    [Fact]
    public async Task Empty_content_is_a_clear_reply_error()
    {
        using var server = new ChatCompletionsServer((_, _) => ChatCompletionsServer.Completion("  "));
        using var rewriter = new LlmReportRewriter(Options(server));
        var e = await Assert.ThrowsAsync<LlmReplyException>(() => rewriter.RewriteAsync(Request()));
        Assert.Contains("empty content", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_reply_cut_off_at_the_token_limit_is_a_clear_reply_error_and_is_not_cached()
    {
        // The first 60 characters of a rewrite, ended by the token limit: a fragment that must not stand for the report.
        using var server = new ChatCompletionsServer((i, _) => i == 0 ? ChatCompletionsServer.Completion(Rewrite[..60], "length") : ChatCompletionsServer.Completion(Rewrite));
        using var rewriter = new LlmReportRewriter(Options(server, cache: true));
        var e = await Assert.ThrowsAsync<LlmReplyException>(() => rewriter.RewriteAsync(Request()));
        Assert.Equal(1, server.Count);                          // not retried
        Assert.Contains("token limit", e.Message, StringComparison.Ordinal);
        Assert.Contains("'length'", e.Message, StringComparison.Ordinal);
        Assert.Contains("MaxTokens 300", e.Message, StringComparison.Ordinal);
        AssertNoKeyIn(e);
        Assert.Equal(0, rewriter.Cache!.Count);                 // nothing cached from a cut-off reply
        // A rerun asks again and gets the whole report.
        var rw = await rewriter.RewriteAsync(Request());
        Assert.Equal(2, server.Count);
        Assert.False(rw!.FromCache);
        Assert.Equal(Rewrite, rw.Rewritten);
    }

    [Fact]
    public async Task The_cache_answers_a_second_time_without_a_request_and_holds_no_key()
    {
        using var server = new ChatCompletionsServer((_, _) => ChatCompletionsServer.Completion(Rewrite));
        using (var first = new LlmReportRewriter(Options(server, cache: true)))
        {
            var rw = await first.RewriteAsync(Request());
            Assert.False(rw!.FromCache);
        }
        Assert.Equal(1, server.Count);
        using (var second = new LlmReportRewriter(Options(server, cache: true)))     // a rerun: a new process would do the same
        {
            var again = await second.RewriteAsync(Request());
            Assert.True(again!.FromCache);
            Assert.Equal(Rewrite, again.Rewritten);
            Assert.Equal(0, second.RequestsSent);
            // Another seed or operation is another request.
            await second.RewriteAsync(Request(seed: 8));
            await second.RewriteAsync(Request(RewriteOperation.PartialOpposite));
        }
        Assert.Equal(3, server.Count);
        var files = Directory.GetFiles(_cacheDir, "*", SearchOption.AllDirectories);
        Assert.Equal(3, files.Length);
        foreach (var f in files)
        {
            string text = File.ReadAllText(f);
            Assert.DoesNotContain(_key, text, StringComparison.Ordinal);
            Assert.DoesNotContain(server.BaseUri.Authority, text, StringComparison.Ordinal);   // endpoint-free
        }
        // The key does not depend on the endpoint.
        Assert.Equal(RewriteCache.Key("m", "i", "r", 0.5, 1, 300), RewriteCache.Key("m", "i", "r", 0.5, 1, 300));
        Assert.NotEqual(RewriteCache.Key("m", "i", "r", 0.5, 1, 300), RewriteCache.Key("m", "i", "r", 0.7, 1, 300));
    }

    [Fact]
    public void A_missing_key_variable_is_a_clear_error_that_names_the_variable()
    {
        var options = new LlmRewriterOptions { Endpoint = new Uri("http://127.0.0.1:9/v1/"), Model = "m", ApiKeyVariable = _keyVariable + "_UNSET" };
        var e = Assert.Throws<ArgumentException>(() => new LlmReportRewriter(options));
        Assert.Contains(_keyVariable + "_UNSET", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_batch_keeps_and_drops_llm_rewrites_by_the_operation_contract()
    {
        // Reply 0 changes the effusion (kept); reply 1 adds a pneumothorax (a new finding: dropped for a change in symptoms).
        const string added = "FINDINGS: Small left pleural effusion. Large right pneumothorax.\nIMPRESSION: Right pneumothorax.";
        using var server = new ChatCompletionsServer((i, _) => ChatCompletionsServer.Completion(i == 0 ? Rewrite : added));
        using var rewriter = new LlmReportRewriter(Options(server));
        var result = await RewriteBatch.RunAsync(rewriter, [Request() with { Id = "a" }, Request(seed: 9) with { Id = "b" }]);
        Assert.Equal(["a"], result.Kept.Select(k => k.Rewrite.Id));
        var dropped = Assert.Single(result.Dropped);
        Assert.Equal("b", dropped.Rewrite.Id);
        Assert.Contains("Pneumothorax", dropped.Verdict.Reason, StringComparison.Ordinal);
        Assert.Equal(2, result.Requested);
    }
}
