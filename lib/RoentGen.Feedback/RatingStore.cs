using System.Globalization;
using Microsoft.Data.Sqlite;
using RoentGen.Data;

namespace RoentGen.Feedback;

/// <summary>
/// Ratings in a SQLite file (Microsoft.Data.Sqlite), safe for concurrent writers in one process or several.
/// <para>
/// Two tables. <c>rating_history</c> keeps every submission ever stored, numbered in the order it was stored
/// (<c>submission</c>, an autoincrement key): nothing is overwritten or deleted. <c>ratings</c> holds the current rating
/// of each (rater, image) pair. The rule for concurrent or repeated submissions is <b>last write wins per (rater,
/// image), history kept</b>: each submission is appended to the history and replaces the pair's current row in the
/// same transaction (<c>BEGIN IMMEDIATE</c>, so writers queue rather than interleave), so the current row is always the
/// pair's highest-numbered submission and the history has one row per submission that was answered as stored.
/// Submissions are whole ratings: one that carries only a grade clears an earlier decision of the pair (the web page
/// sends the decision and grade it shows together).
/// </para>
/// <para>The file uses write-ahead logging (WAL), so readers (the page, an export) never block a writer.</para>
/// </summary>
public sealed class RatingStore : IDisposable
{
    private const int SchemaVersion = 1;
    private readonly string _connectionString;

    private RatingStore(string path, string connectionString)
    {
        Path = path;
        _connectionString = connectionString;
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    /// <summary>Opens a ratings database, creating the file and its tables when they do not exist.</summary>
    /// <param name="path">The .sqlite file (its folder is created when missing).</param>
    /// <exception cref="InvalidDataException">The file exists but is not a SQLite database, or holds another schema.</exception>
    public static RatingStore Open(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new ArgumentException($"ratings database {full} is a folder; expected a .sqlite file");
        var dir = System.IO.Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        var cs = new SqliteConnectionStringBuilder { DataSource = full, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
        var store = new RatingStore(full, cs);
        try { store.CreateSchema(); }
        catch (SqliteException e)
        {
            store.Dispose();
            throw new InvalidDataException($"{full}: not a usable ratings database ({e.Message}); expected a SQLite file made by 'roentgen feedback serve' or a new path", e);
        }
        return store;
    }

    /// <summary>The current ratings of a database file (one per rater and image), without keeping it open.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public static IReadOnlyList<ImageRating> ReadCurrent(string path, string? rater = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ratings database not found: {Platform.TextEscape.Escape(path)}", path);
        using var store = Open(path);
        return store.Current(rater);
    }

    private SqliteConnection Connect()
    {
        var c = new SqliteConnection(_connectionString);
        c.Open();
        return c;
    }

    private void CreateSchema()
    {
        using var c = Connect();
        using (var wal = c.CreateCommand())
        {
            wal.CommandText = "PRAGMA journal_mode=WAL;";
            wal.ExecuteScalar();
        }
        using var tx = c.BeginTransaction();
        using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = """
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS rating_history (
                    submission INTEGER PRIMARY KEY AUTOINCREMENT,
                    rater TEXT NOT NULL,
                    image_id TEXT NOT NULL,
                    decision TEXT NULL CHECK (decision IN ('accept', 'reject')),
                    grade INTEGER NULL CHECK (grade BETWEEN 1 AND 5),
                    rated_at TEXT NOT NULL,
                    CHECK (decision IS NOT NULL OR grade IS NOT NULL));
                CREATE TABLE IF NOT EXISTS ratings (
                    rater TEXT NOT NULL,
                    image_id TEXT NOT NULL,
                    decision TEXT NULL,
                    grade INTEGER NULL,
                    rated_at TEXT NOT NULL,
                    submission INTEGER NOT NULL REFERENCES rating_history(submission),
                    PRIMARY KEY (rater, image_id));
                INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', $v);
                """;
            cmd.Parameters.AddWithValue("$v", SchemaVersion.ToString(CultureInfo.InvariantCulture));
            cmd.ExecuteNonQuery();
        }
        using (var check = c.CreateCommand())
        {
            check.Transaction = tx;
            check.CommandText = "SELECT value FROM meta WHERE key = 'schema_version';";
            var v = check.ExecuteScalar() as string;
            if (v != SchemaVersion.ToString(CultureInfo.InvariantCulture))
                throw new InvalidDataException($"{Path}: ratings schema version {v ?? "(none)"}; this build reads version {SchemaVersion}");
        }
        tx.Commit();
    }

    /// <summary>
    /// Stores a submission: appends it to the history and makes it the (rater, image) pair's current rating, in one
    /// transaction. Returns the stored rating.
    /// </summary>
    /// <exception cref="ArgumentException">The submission is invalid (the message names the field).</exception>
    public ImageRating Submit(RatingSubmission submission)
    {
        if (Ratings.Validate(submission) is var (field, message)) throw new ArgumentException(message, field);
        var now = DateTimeOffset.UtcNow;
        string stamp = now.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        using var c = Connect();
        using var tx = c.BeginTransaction(); // BEGIN IMMEDIATE: one writer at a time, others wait (DefaultTimeout)
        long id;
        using (var ins = c.CreateCommand())
        {
            ins.Transaction = tx;
            ins.CommandText = """
                INSERT INTO rating_history (rater, image_id, decision, grade, rated_at) VALUES ($r, $i, $d, $g, $t);
                SELECT last_insert_rowid();
                """;
            Bind(ins, submission, stamp);
            id = (long)ins.ExecuteScalar()!;
        }
        using (var up = c.CreateCommand())
        {
            up.Transaction = tx;
            up.CommandText = """
                INSERT INTO ratings (rater, image_id, decision, grade, rated_at, submission) VALUES ($r, $i, $d, $g, $t, $s)
                ON CONFLICT (rater, image_id) DO UPDATE SET decision = excluded.decision, grade = excluded.grade,
                    rated_at = excluded.rated_at, submission = excluded.submission
                WHERE excluded.submission > ratings.submission;
                """;
            Bind(up, submission, stamp);
            up.Parameters.AddWithValue("$s", id);
            up.ExecuteNonQuery();
        }
        tx.Commit();
        return new ImageRating(submission.Rater, submission.ImageId, submission.Decision, submission.Grade, ParseStamp(stamp), id);
    }

    private static void Bind(SqliteCommand cmd, RatingSubmission s, string stamp)
    {
        cmd.Parameters.AddWithValue("$r", s.Rater);
        cmd.Parameters.AddWithValue("$i", s.ImageId);
        cmd.Parameters.AddWithValue("$d", s.Decision is null ? DBNull.Value : Ratings.Format(s.Decision));
        cmd.Parameters.AddWithValue("$g", s.Grade is int g ? g : DBNull.Value);
        cmd.Parameters.AddWithValue("$t", stamp);
    }

    /// <summary>The current rating of every (rater, image) pair, ordered by rater then submission; one rater's only when given.</summary>
    public IReadOnlyList<ImageRating> Current(string? rater = null) =>
        Query("SELECT rater, image_id, decision, grade, rated_at, submission FROM ratings"
              + (rater is null ? "" : " WHERE rater = $r") + " ORDER BY rater, submission;", rater);

    /// <summary>Every submission ever stored, in the order stored; one rater's only when given.</summary>
    public IReadOnlyList<ImageRating> History(string? rater = null) =>
        Query("SELECT rater, image_id, decision, grade, rated_at, submission FROM rating_history"
              + (rater is null ? "" : " WHERE rater = $r") + " ORDER BY submission;", rater);

    private List<ImageRating> Query(string sql, string? rater)
    {
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        if (rater is not null) cmd.Parameters.AddWithValue("$r", rater);
        using var r = cmd.ExecuteReader();
        var list = new List<ImageRating>();
        while (r.Read())
        {
            list.Add(new ImageRating(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : Ratings.ParseDecision(r.GetString(2)),
                r.IsDBNull(3) ? null : r.GetInt32(3), ParseStamp(r.GetString(4)), r.GetInt64(5)));
        }
        return list;
    }

    private static DateTimeOffset ParseStamp(string s) =>
        DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    /// <summary>The CSV header of <see cref="WriteCsv"/>.</summary>
    public static IReadOnlyList<string> CsvHeader { get; } = ["rater", "image_id", "decision", "grade", "rated_at", "submission"];

    /// <summary>
    /// Writes ratings as CSV (<see cref="CsvHeader"/>: decision "accept", "reject" or blank; grade 1-5 or blank; rated_at
    /// ISO 8601 UTC). <see cref="ReadCsv"/> reads it back.
    /// </summary>
    public static void WriteCsv(string path, IEnumerable<ImageRating> ratings)
    {
        ArgumentNullException.ThrowIfNull(ratings);
        var rows = ratings.Select(r => (IReadOnlyList<string?>)
        [
            r.Rater, r.ImageId, r.DecisionText, r.Grade?.ToString(CultureInfo.InvariantCulture) ?? "",
            r.RatedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            r.Submission.ToString(CultureInfo.InvariantCulture),
        ]).ToList();
        Platform.AtomicFile.Write(path, stream =>
        {
            using var w = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true);
            Csv.Write(w, CsvHeader.ToArray(), rows);
        });
    }

    /// <summary>Reads a ratings CSV written by <see cref="WriteCsv"/> (or <c>roentgen feedback export</c>).</summary>
    /// <exception cref="InvalidDataException">A column is missing or a value is malformed (the line is named).</exception>
    public static IReadOnlyList<ImageRating> ReadCsv(string path)
    {
        var table = Csv.ReadFile(path);
        table.RequireColumns(CsvHeader.ToArray());
        var list = new List<ImageRating>();
        foreach (var row in table.Rows)
        {
            try
            {
                int? grade = row["grade"].Length == 0 ? null : int.Parse(row["grade"], NumberStyles.Integer, CultureInfo.InvariantCulture);
                var sub = new RatingSubmission(row["rater"], row["image_id"], Ratings.ParseDecision(row["decision"]), grade);
                if (Ratings.Validate(sub) is var (field, message)) throw new ArgumentException(message, field);
                list.Add(new ImageRating(sub.Rater, sub.ImageId, sub.Decision, sub.Grade, ParseStamp(row["rated_at"]),
                    long.Parse(row["submission"], NumberStyles.Integer, CultureInfo.InvariantCulture)));
            }
            catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
            {
                throw new InvalidDataException($"{table.Source}, line {row.LineNumber}: {e.Message}", e);
            }
        }
        return list;
    }

    /// <summary>Closes the pooled connections to the file (so it can be moved or deleted).</summary>
    public void Dispose()
    {
        using var c = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(c);
    }
}
