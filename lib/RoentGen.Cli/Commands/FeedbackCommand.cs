using System.CommandLine;
using RoentGen.Feedback;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen feedback serve --images DIR --db FILE [--port N] [--rater NAME]</c> and
/// <c>roentgen feedback export --db FILE --out ratings.csv [--history]</c>: expert ratings of synthetic images.
/// </summary>
internal static class FeedbackCommand
{
    public static Command Build()
    {
        var cmd = new Command("feedback", "Expert feedback on synthetic images: a local rating page (Accept / Reject, grade 1-5) and its SQLite ratings.");
        cmd.Subcommands.Add(BuildServe());
        cmd.Subcommands.Add(BuildExport());
        return cmd;
    }

    private static Command BuildServe()
    {
        var images = new Option<string>("--images") { Description = "Folder of PNG images, with an optional labels.csv or manifest.json giving each image's prompt, labels and masks.", Required = true };
        var db = new Option<string>("--db") { Description = "SQLite ratings file (created when missing; reopening it resumes where the rater stopped).", Required = true };
        var port = new Option<int>("--port") { Description = "Port on 127.0.0.1; 0 (default) picks a free one and prints the URL.", DefaultValueFactory = _ => 0 };
        var rater = new Option<string?>("--rater") { Description = "Rater name stored with each rating (default: the user name)." };
        var cmd = new Command("serve", "Serve the rating page on 127.0.0.1 until Ctrl+C.") { images, db, port, rater };
        cmd.SetAction((parse, ct) => Cli.RunAsync(parse, async () =>
        {
            var options = new FeedbackServerOptions
            {
                ImagesDirectory = parse.GetValue(images)!,
                DatabasePath = parse.GetValue(db)!,
                Port = parse.GetValue(port),
                Rater = parse.GetValue(rater) ?? (string.IsNullOrWhiteSpace(Environment.UserName) ? "rater" : Environment.UserName),
            };
            await using var server = await FeedbackServer.StartAsync(options, ct).ConfigureAwait(false);
            int rated = server.Store.Current(server.Rater).Select(r => r.ImageId).Distinct().Count(id => server.Catalog.Find(id) is not null);
            Console.WriteLine($"{server.Catalog.Images.Count} images from {Cli.Escape(server.Catalog.Source)}; {rated} rated by {Cli.Escape(server.Rater)} in {Cli.Escape(server.Store.Path)}");
            Console.WriteLine($"feedback page: {server.Url}");
            Console.WriteLine("press Ctrl+C to stop");
            await server.WaitAsync(ct).ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    private static Command BuildExport()
    {
        var db = new Option<string>("--db") { Description = "The SQLite ratings file.", Required = true };
        var output = new Option<string>("--out") { Description = "CSV to write: rater, image_id, decision, grade, rated_at, submission.", Required = true };
        var history = new Option<bool>("--history") { Description = "Write every submission ever stored instead of each rater's current rating per image." };
        var rater = new Option<string?>("--rater") { Description = "Only this rater's ratings." };
        var cmd = new Command("export", "Write the ratings of a feedback database as CSV.") { db, output, history, rater };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var path = parse.GetValue(db)!;
            if (!File.Exists(path)) throw new FileNotFoundException($"--db {path}: no such ratings database", path);
            using var store = RatingStore.Open(path);
            var ratings = parse.GetValue(history) ? store.History(parse.GetValue(rater)) : store.Current(parse.GetValue(rater));
            var outPath = Path.GetFullPath(parse.GetValue(output)!);
            RatingStore.WriteCsv(outPath, ratings);
            Console.WriteLine($"wrote {ratings.Count} ratings to {Cli.Escape(outPath)}");
        }));
        return cmd;
    }
}
