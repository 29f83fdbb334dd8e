using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace RoentGen.Tests.PairAug;

/// <summary>What the test server saw of one request.</summary>
public sealed record SeenRequest(string Path, string? Authorization, string Body);

/// <summary>One scripted answer: status, body, headers, and a delay before answering (to hang past a client timeout).</summary>
public sealed record ScriptedReply(int Status, string Body, IReadOnlyDictionary<string, string>? Headers = null, TimeSpan? Delay = null);

/// <summary>
/// A real HTTP server on loopback (HttpListener on a free port) that speaks enough of the OpenAI chat-completions API
/// for the LLM rewriter: each POST to /v1/chat/completions gets the reply the script gives for its index (0-based), and
/// every request is recorded.
/// </summary>
public sealed class ChatCompletionsServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Func<int, SeenRequest, ScriptedReply> _script;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _count;

    public ChatCompletionsServer(Func<int, SeenRequest, ScriptedReply> script)
    {
        _script = script;
        int port = FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        BaseUri = new Uri($"http://127.0.0.1:{port}/v1/");
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>The API base URL (…/v1/).</summary>
    public Uri BaseUri { get; }

    /// <summary>Requests in arrival order.</summary>
    public ConcurrentQueue<SeenRequest> Requests { get; } = new();

    /// <summary>Number of requests received.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>A chat completion whose first choice says <paramref name="content"/> and ends for <paramref name="finishReason"/> ("length": cut off at the token limit).</summary>
    public static ScriptedReply Completion(string content, string finishReason = "stop") => new(200, JsonSerializer.Serialize(new
    {
        id = "chatcmpl-test", @object = "chat.completion", created = 1_700_000_000, model = "test-model",
        choices = new[] { new { index = 0, message = new { role = "assistant", content }, finish_reason = finishReason } },
        usage = new { prompt_tokens = 10, completion_tokens = 20, total_tokens = 30 },
    }));

    /// <summary>A chat completion with no choices.</summary>
    public static ScriptedReply NoChoices() => new(200,
        """{"id":"chatcmpl-test","object":"chat.completion","created":1700000000,"model":"test-model","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1}}""");

    /// <summary>An error status with an OpenAI-style error body.</summary>
    public static ScriptedReply Error(int status, IReadOnlyDictionary<string, string>? headers = null) =>
        new(status, JsonSerializer.Serialize(new { error = new { message = $"scripted {status}", type = "server_error" } }), headers);

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync().ConfigureAwait(false); }
            catch (Exception) when (_stop.IsCancellationRequested || !_listener.IsListening) { return; }
            catch (HttpListenerException) { return; }
            _ = Task.Run(() => HandleAsync(ctx));
        }
    }

    private async Task HandleAsync(HttpListenerContext ctx)
    {
        try
        {
            string body;
            using (var reader = new StreamReader(ctx.Request.InputStream, Encoding.UTF8)) body = await reader.ReadToEndAsync().ConfigureAwait(false);
            var seen = new SeenRequest(ctx.Request.Url!.AbsolutePath, ctx.Request.Headers["Authorization"], body);
            Requests.Enqueue(seen);
            int index = Interlocked.Increment(ref _count) - 1;
            var reply = _script(index, seen);
            if (reply.Delay is { } d) await Task.Delay(d, _stop.Token).ConfigureAwait(false);
            ctx.Response.StatusCode = reply.Status;
            ctx.Response.ContentType = "application/json";
            foreach (var (k, v) in reply.Headers ?? new Dictionary<string, string>()) ctx.Response.Headers[k] = v;
            var bytes = Encoding.UTF8.GetBytes(reply.Body);
            ctx.Response.ContentLength64 = bytes.Length;
            await ctx.Response.OutputStream.WriteAsync(bytes).ConfigureAwait(false);
            ctx.Response.Close();
        }
        catch (Exception)
        {
            // The client went away (a timed-out request) or the server is stopping.
            try { ctx.Response.Abort(); } catch (Exception) { /* already gone */ }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _listener.Stop(); _listener.Close(); } catch (ObjectDisposedException) { }
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }
}
