using System.Net;
using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.HostFiltering;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace RoentGen.Feedback;

/// <summary>Settings of <see cref="FeedbackServer.StartAsync"/>.</summary>
public sealed record FeedbackServerOptions
{
    /// <summary>The synthetic set's folder (see <see cref="FeedbackCatalog"/>).</summary>
    public required string ImagesDirectory { get; init; }

    /// <summary>The SQLite ratings file (created when missing; reopening it resumes).</summary>
    public required string DatabasePath { get; init; }

    /// <summary>The loopback port; 0 picks a free one (read it from <see cref="FeedbackServer.Url"/>).</summary>
    public int Port { get; init; }

    /// <summary>The rater whose ratings the page shows and stores (a page URL's <c>?rater=NAME</c> overrides it).</summary>
    public string Rater { get; init; } = "rater";
}

/// <summary>
/// The expert-feedback page: an ASP.NET Core minimal API on 127.0.0.1 only, serving one page that shows each synthetic
/// image with its condition (prompt, labels, mask overlays) and stores Accept / Reject and a 1-5 grade per image in
/// a <see cref="RatingStore"/>.
/// <para>Endpoints (JSON unless said):</para>
/// <list type="bullet">
/// <item><c>GET /</c>: the page (HTML).</item>
/// <item><c>GET /api/session</c>: <c>{rater, total, rated}</c>.</item>
/// <item><c>GET /api/images?rater=NAME</c>: <c>{rater, total, rated, images: [{id, prompt, labels, masks: [{name, color}], rating}]}</c>,
/// rating being that rater's current one or null.</item>
/// <item><c>GET /api/image?id=ID</c>: the PNG; <c>GET /api/mask?id=ID&amp;name=NAME</c>: the mask as a tinted,
/// transparent PNG overlay.</item>
/// <item><c>POST /api/ratings</c> with <c>Content-Type: application/json</c> and
/// <c>{"imageId": ID, "decision": "accept"|"reject"|null, "grade": 1..5|null, "rater": optional}</c>: stores a rating
/// (<see cref="RatingStore"/>'s rule: last write wins per rater and image, every submission kept in the history);
/// answers <c>{rating, rated, total}</c>.</item>
/// <item><c>GET /api/ratings</c>: every rater's current ratings.</item>
/// </list>
/// Errors are <c>{"error": message, "field": name}</c>: 400 for a malformed request (the field named), or an image id
/// that looks like a path ("..", "/" or "\" at its start, or a ".." segment: refused, never resolved against the
/// disk), 404 for an id the set does not hold, 415 for a POST that is not JSON (which also keeps other web sites from
/// posting ratings through a browser, as such a request would need a CORS preflight that this server never grants).
/// Only the Host names 127.0.0.1 and localhost are served (a guard against DNS rebinding). Images are only ever
/// read from the catalogue's checked paths.
/// </summary>
public sealed class FeedbackServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FeedbackServer(WebApplication app, Uri url, FeedbackCatalog catalog, RatingStore store, string rater)
    {
        _app = app; Url = url; Catalog = catalog; Store = store; Rater = rater;
    }

    /// <summary>The page's address, e.g. http://127.0.0.1:5123/.</summary>
    public Uri Url { get; }

    /// <summary>The images shown.</summary>
    public FeedbackCatalog Catalog { get; }

    /// <summary>The ratings database.</summary>
    public RatingStore Store { get; }

    /// <summary>The default rater.</summary>
    public string Rater { get; }

    /// <summary>Loads the set, opens (or creates) the database and starts listening on 127.0.0.1.</summary>
    /// <exception cref="ArgumentException">A bad port or rater name.</exception>
    /// <exception cref="InvalidDataException">The set or the database is unusable (see <see cref="FeedbackCatalog.Load"/>, <see cref="RatingStore.Open"/>).</exception>
    /// <exception cref="IOException">The port is taken.</exception>
    public static async Task<FeedbackServer> StartAsync(FeedbackServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Port is < 0 or > 65535) throw new ArgumentException($"port must be 0 (pick a free one) to 65535, got {options.Port}", nameof(options));
        if (Ratings.Validate(new RatingSubmission(options.Rater, "x", RatingDecision.Accept, null)) is var (_, problem))
            throw new ArgumentException($"--rater: {problem}", nameof(options));
        var catalog = FeedbackCatalog.Load(options.ImagesDirectory);
        var store = RatingStore.Open(options.DatabasePath);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = typeof(FeedbackServer).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, options.Port);
            k.Limits.MaxRequestBodySize = 64 * 1024;
            k.AddServerHeader = false;
        });
        builder.Services.Configure<HostFilteringOptions>(h => h.AllowedHosts = ["127.0.0.1", "localhost"]);
        var app = builder.Build();
        app.UseHostFiltering();
        var api = new Api(catalog, store, options.Rater);
        api.Map(app);
        try { await app.StartAsync(cancellationToken).ConfigureAwait(false); }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            store.Dispose();
            throw new IOException($"cannot listen on 127.0.0.1:{options.Port} ({e.Message}); pick another --port, or 0 for a free one", e);
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var url = new Uri(address.Replace("[::1]", "127.0.0.1", StringComparison.Ordinal).TrimEnd('/') + "/");
        return new FeedbackServer(app, url, catalog, store, options.Rater);
    }

    /// <summary>
    /// Runs until the token is cancelled or the host is asked to stop (Ctrl+C or SIGTERM: the host's console lifetime
    /// handles both), then stops.
    /// </summary>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _app.Lifetime.ApplicationStopping);
        try { await Task.Delay(Timeout.Infinite, either.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Stops the server and closes the database.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        Store.Dispose();
    }

    /// <summary>The colour of a mask overlay: fixed for the usual names, else from a small palette by a stable hash of the name.</summary>
    internal static (byte R, byte G, byte B) MaskColor(string name) => name switch
    {
        "lungs" or "mask" => (64, 160, 255),
        "heart" => (255, 200, 0),
        _ => Palette[(int)(StableHash(name) % (uint)Palette.Length)],
    };

    private static readonly (byte, byte, byte)[] Palette = [(255, 60, 60), (60, 220, 90), (220, 80, 255), (255, 140, 0), (0, 220, 220), (255, 90, 170)];

    private static uint StableHash(string s)
    {
        uint h = 2166136261;
        foreach (char c in s) { h ^= c; h *= 16777619; }
        return h;
    }

    private sealed class Api(FeedbackCatalog catalog, RatingStore store, string defaultRater)
    {
        // Relaxed escaping keeps quotes readable in messages; responses are application/json, never inlined into HTML.
        private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

        public void Map(WebApplication app)
        {
            app.MapGet("/", () => Results.Content(Page.Value, "text/html; charset=utf-8"));
            app.MapGet("/api/session", () => Results.Json(new { rater = defaultRater, total = catalog.Images.Count, rated = Rated(defaultRater) }, Json));
            app.MapGet("/api/images", (HttpRequest req) =>
            {
                string rater = req.Query["rater"].FirstOrDefault() is { Length: > 0 } r ? r : defaultRater;
                if (Ratings.Validate(new RatingSubmission(rater, "x", RatingDecision.Accept, null)) is var (_, problem)) return Error(400, "rater", problem);
                var current = store.Current(rater).ToDictionary(x => x.ImageId, StringComparer.Ordinal);
                var images = catalog.Images.Select(i => new
                {
                    id = i.Id,
                    prompt = i.Prompt,
                    labels = i.Labels,
                    masks = i.Masks.Keys.Select(n => new { name = n, color = Hex(MaskColor(n)) }),
                    rating = current.TryGetValue(i.Id, out var x) ? ToJson(x) : null,
                });
                return Results.Json(new { rater, total = catalog.Images.Count, rated = catalog.Images.Count(i => current.ContainsKey(i.Id)), images }, Json);
            });
            app.MapGet("/api/image", (HttpRequest req) =>
            {
                if (Lookup(req.Query["id"].FirstOrDefault(), out var image) is { } error) return error;
                return Results.File(image!.ImagePath, "image/png");
            });
            app.MapGet("/api/mask", (HttpRequest req) =>
            {
                if (Lookup(req.Query["id"].FirstOrDefault(), out var image) is { } error) return error;
                string? name = req.Query["name"].FirstOrDefault();
                if (string.IsNullOrEmpty(name)) return Error(400, "name", "the mask name is missing; expected ?name=NAME");
                if (!image!.Masks.TryGetValue(name, out var path))
                    return Error(404, "name", $"image '{Esc(image.Id)}' has no mask '{Esc(name)}'; it has: {(image.Masks.Count == 0 ? "none" : string.Join(", ", image.Masks.Keys))}");
                return Results.Bytes(Overlay(path, MaskColor(name)), "image/png");
            });
            app.MapGet("/api/ratings", () => Results.Json(store.Current().Select(ToJson), Json));
            app.MapPost("/api/ratings", async (HttpRequest req) =>
            {
                if (!req.HasJsonContentType()) return Error(415, "Content-Type", $"ratings are posted as JSON (Content-Type: application/json); got '{Esc(req.ContentType ?? "none")}'");
                JsonDocument doc;
                try { doc = await JsonDocument.ParseAsync(req.Body).ConfigureAwait(false); }
                catch (JsonException e) { return Error(400, "body", $"the request body is not valid JSON ({e.Message}); expected {{\"imageId\": ..., \"decision\": \"accept\"|\"reject\"|null, \"grade\": 1-5|null}}"); }
                catch (BadHttpRequestException e) { return Error(e.StatusCode, "body", e.Message); }
                using (doc) return Post(doc.RootElement);
            });
        }

        private IResult Post(JsonElement body)
        {
            if (body.ValueKind != JsonValueKind.Object) return Error(400, "body", $"the body is a JSON {body.ValueKind}; expected an object with imageId, decision and grade");
            string[] known = ["imageId", "decision", "grade", "rater"];
            foreach (var p in body.EnumerateObject())
                if (!known.Contains(p.Name, StringComparer.Ordinal)) return Error(400, p.Name, $"unknown field '{Esc(p.Name)}'; expected {string.Join(", ", known)}");
            if (!body.TryGetProperty("imageId", out var idEl) || idEl.ValueKind != JsonValueKind.String)
                return Error(400, "imageId", $"imageId must be a string naming an image of the set; got {(idEl.ValueKind == JsonValueKind.Undefined ? "none" : idEl.ValueKind.ToString())}");
            if (Lookup(idEl.GetString(), out var image) is { } notFound) return notFound;
            RatingDecision? decision = null;
            if (body.TryGetProperty("decision", out var d) && d.ValueKind != JsonValueKind.Null)
            {
                if (d.ValueKind != JsonValueKind.String) return Error(400, "decision", $"decision must be \"accept\", \"reject\" or null; got a {d.ValueKind}");
                try { decision = Ratings.ParseDecision(d.GetString()); }
                catch (ArgumentException e) { return Error(400, "decision", e.Message); }
            }
            int? grade = null;
            if (body.TryGetProperty("grade", out var g) && g.ValueKind != JsonValueKind.Null)
            {
                if (g.ValueKind != JsonValueKind.Number || !g.TryGetInt32(out int gi)) return Error(400, "grade", $"grade must be an integer from 1 to 5 or null; got {Esc(g.GetRawText())}");
                grade = gi;
            }
            string rater = defaultRater;
            if (body.TryGetProperty("rater", out var r) && r.ValueKind != JsonValueKind.Null)
            {
                if (r.ValueKind != JsonValueKind.String) return Error(400, "rater", $"rater must be a string; got a {r.ValueKind}");
                rater = r.GetString()!;
            }
            var submission = new RatingSubmission(rater, image!.Id, decision, grade);
            if (Ratings.Validate(submission) is var (field, message)) return Error(400, field, message);
            var stored = store.Submit(submission);
            return Results.Json(new { rating = ToJson(stored), rated = Rated(rater), total = catalog.Images.Count }, Json);
        }

        private int Rated(string rater)
        {
            var ids = store.Current(rater).Select(x => x.ImageId).ToHashSet(StringComparer.Ordinal);
            return catalog.Images.Count(i => ids.Contains(i.Id));
        }

        // 400 for a path-like id (refused outright), 404 for an id the set lacks, null when found.
        private IResult? Lookup(string? id, out FeedbackImage? image)
        {
            image = null;
            if (string.IsNullOrEmpty(id)) return Error(400, "id", "the image id is missing; expected ?id=ID (an id listed by /api/images)");
            if (LooksLikePath(id))
                return Error(400, "id", $"image id '{Esc(id)}' refused: it looks like a file path (a leading slash or backslash, a drive, or a '..' segment); ids are names from /api/images, never paths");
            image = catalog.Find(id);
            return image is null ? Error(404, "id", $"unknown image id '{Esc(id)}'; the set holds {catalog.Images.Count} images (see /api/images)") : null;
        }

        internal static bool LooksLikePath(string id) =>
            id.StartsWith('/') || id.StartsWith('\\') || (id.Length >= 2 && id[1] == ':') || id.Contains('\0')
            || id.Split('/', '\\').Any(s => s == "..");

        private static object ToJson(ImageRating x) => new
        {
            rater = x.Rater, imageId = x.ImageId, decision = x.Decision is null ? null : x.DecisionText, grade = x.Grade,
            ratedAt = x.RatedAt.UtcDateTime.ToString("o", System.Globalization.CultureInfo.InvariantCulture), submission = x.Submission,
        };

        private static IResult Error(int status, string field, string message) => Results.Json(new { error = message, field }, Json, statusCode: status);

        private static string Esc(string s) => Platform.TextEscape.Escape(s);

        private static string Hex((byte R, byte G, byte B) c) => $"#{c.R:x2}{c.G:x2}{c.B:x2}";

        private static byte[] Overlay(string path, (byte R, byte G, byte B) color)
        {
            var mask = Data.ImageIO.Read(path);
            using var img = new Image<Rgba32>(mask.Width, mask.Height);
            for (int y = 0; y < mask.Height; y++)
                for (int x = 0; x < mask.Width; x++)
                    img[x, y] = mask[x, y] >= 0.5f ? new Rgba32(color.R, color.G, color.B, 110) : new Rgba32(0, 0, 0, 0);
            using var ms = new MemoryStream();
            img.SaveAsPng(ms);
            return ms.ToArray();
        }

        private static readonly Lazy<string> Page = new(() =>
        {
            using var s = Assembly.GetExecutingAssembly().GetManifestResourceStream("RoentGen.Feedback.index.html")
                ?? throw new InvalidOperationException("the page resource RoentGen.Feedback.index.html is missing from the assembly");
            using var r = new StreamReader(s);
            return r.ReadToEnd();
        });
    }
}
