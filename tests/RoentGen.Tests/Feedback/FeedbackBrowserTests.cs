using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using RoentGen.Feedback;

namespace RoentGen.Tests.Feedback;

/// <summary>
/// The rating page end to end in real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium):
/// click Accept, Reject and grades on several images, reload, check the page and the SQLite rows.
/// </summary>
public sealed class FeedbackBrowserTests
{
    private const string Chromium = "/usr/bin/chromium";
    private const string ChromeDriver = "/usr/bin/chromedriver";

    private static string? Missing() =>
        !File.Exists(Chromium) ? $"{Chromium} not found"
        : !File.Exists(ChromeDriver) ? $"{ChromeDriver} not found"
        : null;

    [SkippableFact]
    public async Task Rating_by_clicking_is_stored_and_shown_again_after_a_reload()
    {
        var missing = Missing();
        Skip.If(missing is not null, $"{missing}: run environment/install-test-packages.sh (Debian's chromium and chromium-driver) to run the feedback page's browser test");
        var dir = FeedbackFixture.WriteSet(5);
        var profile = TestPaths.NewTempDir("roentgen-chromium-profile");
        try
        {
            await using var server = await FeedbackServer.StartAsync(new FeedbackServerOptions
            {
                ImagesDirectory = dir, DatabasePath = Path.Combine(dir, "ratings.sqlite"), Rater = "dr-browser",
            });
            var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(ChromeDriver)!, Path.GetFileName(ChromeDriver));
            service.HideCommandPromptWindow = true;
            service.SuppressInitialDiagnosticInformation = true;
            var options = new ChromeOptions { BinaryLocation = Chromium };
            options.AddArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1200,900", $"--user-data-dir={profile}");
            using var driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
            var wait = new WebDriverWait(driver, TimeSpan.FromSeconds(20));

            void Load()
            {
                driver.Navigate().GoToUrl(server.Url);
                wait.Until(d => d.FindElement(By.TagName("body")).GetAttribute("data-ready") == "true");
            }
            void Settled() => wait.Until(d => d.FindElement(By.TagName("body")).GetAttribute("data-pending") == "0");
            string Text(string id) => driver.FindElement(By.Id(id)).Text;
            string Pressed(string id) => driver.FindElement(By.Id(id)).GetAttribute("aria-pressed") ?? "";
            void Click(string id) => driver.FindElement(By.Id(id)).Click();

            Load();
            Assert.Equal("0 rated of 5", Text("progress"));
            Assert.Equal("synth_00.png", Text("image-id"));
            Assert.Contains("right pleural effusion", Text("prompt"));
            Assert.Contains("Pleural Effusion", Text("labels"));
            Assert.Single(driver.FindElements(By.CssSelector("#viewer img.overlay")));
            wait.Until(d => (bool)((IJavaScriptExecutor)d).ExecuteScript("const i = document.getElementById('image'); return i.complete && i.naturalWidth === 32;")!);

            // image 0: accept, grade 4
            Click("accept"); Click("grade-4"); Settled();
            Assert.Equal("true", Pressed("accept"));
            Assert.Equal("true", Pressed("grade-4"));
            Assert.Equal("1 rated of 5", Text("progress"));
            // image 1: reject, grade 2
            Click("next"); Assert.Equal("synth_01.png", Text("image-id"));
            Click("reject"); Click("grade-2"); Settled();
            // image 2: grade 5 first, then accept; then change the grade to 3 (last click wins)
            Click("next"); Click("grade-5"); Click("accept"); Click("grade-3"); Settled();
            Assert.Equal("3 rated of 5", Text("progress"));
            // back to image 1 and change the decision: reject -> accept, grade kept
            Click("prev"); Assert.Equal("synth_01.png", Text("image-id"));
            Assert.Equal("true", Pressed("reject"));
            Click("accept"); Settled();
            Assert.Contains("Saved synth_01.png (accept, grade 2)", Text("status"));

            // reload: resumes at the first unrated image and shows what is rated
            Load();
            Assert.Equal("3 rated of 5", Text("progress"));
            Assert.Equal("synth_03.png", Text("image-id"));
            Assert.Equal("false", Pressed("accept"));
            Click("prev");
            Assert.Equal("synth_02.png", Text("image-id"));
            Assert.Equal("true", Pressed("accept"));
            Assert.Equal("true", Pressed("grade-3"));
            Assert.Equal("false", Pressed("grade-5"));

            // the database: current rows and the full history of clicks
            var current = server.Store.Current("dr-browser").ToDictionary(r => r.ImageId);
            Assert.Equal(3, current.Count);
            Assert.Equal((RatingDecision.Accept, 4), (current["synth_00.png"].Decision!.Value, current["synth_00.png"].Grade!.Value));
            Assert.Equal((RatingDecision.Accept, 2), (current["synth_01.png"].Decision!.Value, current["synth_01.png"].Grade!.Value));
            Assert.Equal((RatingDecision.Accept, 3), (current["synth_02.png"].Decision!.Value, current["synth_02.png"].Grade!.Value));
            var history = server.Store.History("dr-browser");
            Assert.Equal(8, history.Count); // every click: 2 + 2 + 3 + 1
            Assert.Equal([null, RatingDecision.Accept, RatingDecision.Accept], history.Where(h => h.ImageId == "synth_02.png").Select(h => h.Decision));
            Assert.Equal([5, 5, 3], history.Where(h => h.ImageId == "synth_02.png").Select(h => h.Grade));
            driver.Quit();
        }
        finally
        {
            TestPaths.DeleteQuietly(profile);
            TestPaths.DeleteQuietly(dir);
        }
    }
}
