using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using RoentGen.Feedback;

namespace RoentGen.Tests.Feedback;

/// <summary>The feedback server over HTTP: its answers to bad input, concurrent submissions, resuming on the same database.</summary>
public sealed class FeedbackServerTests : IAsyncLifetime
{
    private readonly string _dir = FeedbackFixture.WriteSet(4);
    private string Db => Path.Combine(_dir, "ratings.sqlite");
    private FeedbackServer _server = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = await FeedbackServer.StartAsync(new FeedbackServerOptions { ImagesDirectory = _dir, DatabasePath = Db, Rater = "dr-a" });
        _http = new HttpClient { BaseAddress = _server.Url };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        TestPaths.DeleteQuietly(_dir);
    }

    private Task<HttpResponseMessage> PostJson(string json) =>
        _http.PostAsync("api/ratings", new StringContent(json, Encoding.UTF8, "application/json"));

    private static async Task<(string Error, string Field)> ErrorOf(HttpResponseMessage r)
    {
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        return (doc.RootElement.GetProperty("error").GetString()!, doc.RootElement.GetProperty("field").GetString()!);
    }

    [Fact]
    public async Task Binds_to_loopback_on_a_free_port_and_serves_the_page_and_images()
    {
        Assert.Equal("127.0.0.1", _server.Url.Host);
        Assert.NotEqual(0, _server.Url.Port);
        var page = await _http.GetStringAsync("/");
        Assert.Contains("id=\"accept\"", page);
        var png = await _http.GetByteArrayAsync($"api/image?id={FeedbackFixture.Id(0)}");
        Assert.Equal(0x89, png[0]);
        var overlay = await _http.GetAsync($"api/mask?id={FeedbackFixture.Id(0)}&name=lungs");
        Assert.Equal(HttpStatusCode.OK, overlay.StatusCode);
        Assert.Equal("image/png", overlay.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task Unknown_image_id_is_404_with_a_message()
    {
        var r = await _http.GetAsync("api/image?id=nope.png");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        var (error, field) = await ErrorOf(r);
        Assert.Equal("id", field);
        Assert.Contains("unknown image id 'nope.png'", error);
        var post = await PostJson("{\"imageId\":\"nope.png\",\"decision\":\"accept\"}");
        Assert.Equal(HttpStatusCode.NotFound, post.StatusCode);
        var mask = await _http.GetAsync($"api/mask?id={FeedbackFixture.Id(1)}&name=lungs");
        Assert.Equal(HttpStatusCode.NotFound, mask.StatusCode);
        Assert.Contains("has no mask 'lungs'", (await ErrorOf(mask)).Error);
        Assert.Empty(_server.Store.History());
    }

    [Theory]
    [InlineData("../manifest.json")]
    [InlineData("..%2F..%2Fetc%2Fpasswd")]
    [InlineData("%2Fetc%2Fpasswd")]
    [InlineData("masks%2F..%2F..%2Fratings.sqlite")]
    [InlineData("..%5Csynth_00.png")]
    [InlineData("C:%5Cwindows")]
    public async Task Path_traversal_in_an_image_id_is_refused(string id)
    {
        var r = await _http.GetAsync($"api/image?id={id}");
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var (error, field) = await ErrorOf(r);
        Assert.Equal("id", field);
        Assert.Contains("refused", error);
        var post = await PostJson(JsonSerializer.Serialize(new { imageId = Uri.UnescapeDataString(id), decision = "accept" }));
        Assert.Equal(HttpStatusCode.BadRequest, post.StatusCode);
        Assert.Empty(_server.Store.History());
    }

    [Theory]
    [InlineData("{\"imageId\":\"synth_00.png\",\"grade\":7}", "grade", "from 1 to 5, got 7")]
    [InlineData("{\"imageId\":\"synth_00.png\",\"grade\":0}", "grade", "got 0")]
    [InlineData("{\"imageId\":\"synth_00.png\",\"grade\":\"4\"}", "grade", "integer")]
    [InlineData("{\"imageId\":\"synth_00.png\",\"grade\":3.5}", "grade", "integer")]
    [InlineData("{\"imageId\":\"synth_00.png\",\"decision\":\"maybe\"}", "decision", "'maybe'")]
    [InlineData("{\"imageId\":\"synth_00.png\",\"decision\":1}", "decision", "Number")]
    [InlineData("{\"imageId\":\"synth_00.png\"}", "decision", "neither")]
    [InlineData("{\"decision\":\"accept\"}", "imageId", "imageId must be a string")]
    [InlineData("{\"imageId\":5,\"decision\":\"accept\"}", "imageId", "imageId must be a string")]
    [InlineData("{\"imageId\":\"synth_00.png\",\"decision\":\"accept\",\"score\":3}", "score", "unknown field 'score'")]
    [InlineData("{\"imageId\":\"synth_00.png\",\"decision\":\"accept\",\"rater\":\"  \"}", "rater", "blank")]
    [InlineData("[1,2]", "body", "expected an object")]
    [InlineData("{\"imageId\":", "body", "not valid JSON")]
    public async Task Malformed_rating_is_400_naming_the_field(string body, string field, string fragment)
    {
        var r = await PostJson(body);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var (error, f) = await ErrorOf(r);
        Assert.Equal(field, f);
        Assert.Contains(fragment, error);
        Assert.Empty(_server.Store.History());
    }

    [Fact]
    public async Task A_post_that_is_not_json_is_415()
    {
        var r = await _http.PostAsync("api/ratings", new StringContent("imageId=synth_00.png&decision=accept", Encoding.UTF8, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, r.StatusCode);
        Assert.Equal("Content-Type", (await ErrorOf(r)).Field);
        Assert.Empty(_server.Store.History());
    }

    [Fact]
    public async Task A_foreign_host_header_is_refused()
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, "api/session");
        req.Headers.Host = "attacker.example";
        var r = await _http.SendAsync(req);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
    }

    [Fact]
    public async Task Concurrent_submissions_lose_nothing_and_the_last_stored_wins()
    {
        const int posts = 240;
        string[] raters = ["dr-a", "dr-b", "dr-c"];
        var tasks = Enumerable.Range(0, posts).Select(async k =>
        {
            var body = new { imageId = FeedbackFixture.Id(k % 4), rater = raters[k % 3], decision = k % 5 == 0 ? "reject" : "accept", grade = 1 + k % 5 };
            var r = await _http.PostAsJsonAsync("api/ratings", body);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        });
        await Task.WhenAll(tasks);
        var history = _server.Store.History();
        Assert.Equal(posts, history.Count);
        Assert.Equal(posts, history.Select(h => h.Submission).Distinct().Count());
        var current = _server.Store.Current();
        Assert.Equal(12, current.Count); // 3 raters x 4 images, one current row each
        foreach (var c in current)
        {
            var last = history.Where(h => h.Rater == c.Rater && h.ImageId == c.ImageId).MaxBy(h => h.Submission)!;
            Assert.Equal(last, c);
        }
    }

    [Fact]
    public async Task Reopening_the_database_resumes_with_the_ratings_shown()
    {
        (await PostJson("{\"imageId\":\"synth_01.png\",\"decision\":\"reject\",\"grade\":2}")).EnsureSuccessStatusCode();
        (await PostJson("{\"imageId\":\"synth_01.png\",\"decision\":\"accept\",\"grade\":4}")).EnsureSuccessStatusCode();
        await _server.DisposeAsync();
        _server = await FeedbackServer.StartAsync(new FeedbackServerOptions { ImagesDirectory = _dir, DatabasePath = Db, Rater = "dr-a" });
        _http.Dispose();
        _http = new HttpClient { BaseAddress = _server.Url };
        using var doc = JsonDocument.Parse(await _http.GetStringAsync("api/images"));
        Assert.Equal(1, doc.RootElement.GetProperty("rated").GetInt32());
        Assert.Equal(4, doc.RootElement.GetProperty("total").GetInt32());
        var img = doc.RootElement.GetProperty("images")[1];
        Assert.Equal("synth_01.png", img.GetProperty("id").GetString());
        Assert.Equal("accept", img.GetProperty("rating").GetProperty("decision").GetString());
        Assert.Equal(4, img.GetProperty("rating").GetProperty("grade").GetInt32());
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("images")[0].GetProperty("rating").ValueKind);
        Assert.Equal(2, _server.Store.History().Count);
    }
}
