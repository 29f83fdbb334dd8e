using System.Text.Json;
using RoentGen.Teaching;

namespace RoentGen.Tests.Teaching;

public class ExercisesTests
{
    /// <summary>A right and a wrong answer for every exercise, in the forms a student would type.</summary>
    public static TheoryData<string, object, object> Answers => new()
    {
        { "00-q1", 17.18, 8.59 },
        { "00-q2", 65536, 16384 },
        { "01-q1", "right", "left" },
        { "01-q2", "-1", "1" },
        { "02-q1", 0.5, 0.25 },
        { "02-q2", 1.4, 2.0 },
        { "02-q3", "conditional", "unconditional" },
        { "03-q1", 0.5, 0.0 },
        { "03-q2", "b", "a" },
        { "03-q3", "ddpm", "ddim" },
        { "04-q1", 5.545, 8.0 },
        { "04-q2", 0.004, 0.996 },
        { "04-q3", "ibot", "dino" },
        { "05-q1", "no", "yes" },
        { "05-q2", "yes", "no" },
        { "10-q1", 0.0, 1.0 },
        { "10-q2", 0.8, 0.857 },
        { "11-q1", "yes", "no" },
        { "11-q2", 0.0278, 0.0196 },
    };

    [Theory]
    [MemberData(nameof(Answers))]
    public void The_right_answer_passes_and_a_wrong_one_fails(string id, object right, object wrong)
    {
        var ok = Exercises.Check(id, right);
        Assert.True(ok.Correct, ok.ToString());
        Assert.StartsWith($"{id}: right.", ok.ToString());
        var no = Exercises.Check(id, wrong);
        Assert.False(no.Correct, no.ToString());
        Assert.StartsWith($"{id}: not yet.", no.ToString());
        Assert.False(Exercises.Check(id, null).Correct);
        Assert.False(Exercises.Check(id, "").Correct);
    }

    [Fact]
    public void Every_exercise_has_a_test_row_and_numbers_parse_from_text_and_words_ignore_case()
    {
        var tested = Answers.Select(r => (string)r[0]).ToHashSet();
        Assert.Equal(Exercises.All.Select(e => e.Id).Order(), tested.Order());
        Assert.Equal(Exercises.All.Count, Exercises.All.Select(e => e.Id).Distinct().Count());
        Assert.True(Exercises.Check("02-q1", "0.5").Correct);
        Assert.True(Exercises.Check("01-q1", " Right ").Correct);
        Assert.False(Exercises.Check("02-q1", double.NaN).Correct);
        Assert.Equal(3, Exercises.ForNotebook("02-train-latent-diffusion").Count);
        var ex = Assert.Throws<KeyNotFoundException>(() => Exercises.Check("99-q1", 1));
        Assert.Contains("02-q1", ex.Message);
    }

    [Fact]
    public void Every_notebook_asks_and_checks_its_exercises_and_ends_with_try_next_and_a_questionnaire()
    {
        var teaching = Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "notebooks"), "*.ipynb")
            .Where(p => System.Text.RegularExpressions.Regex.IsMatch(Path.GetFileName(p), "^0[0-5]-")).ToList();
        Assert.Equal(6, teaching.Count);
        foreach (var path in teaching)
        {
            var name = Path.GetFileName(path);
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var cells = doc.RootElement.GetProperty("cells").EnumerateArray()
                .Select(c => (Type: c.GetProperty("cell_type").GetString(), Source: string.Concat(c.GetProperty("source").EnumerateArray().Select(s => s.GetString())))).ToList();
            var all = string.Join("\n", cells.Select(c => c.Source));
            foreach (var e in Exercises.ForNotebook(name))
                Assert.Contains($"Exercises.Check(\"{e.Id}\"", all);
            Assert.Contains(cells, c => c.Type == "markdown" && c.Source.Contains("What to try next"));
            Assert.Contains(cells, c => c.Type == "markdown" && c.Source.Contains("Questionnaire"));
            Assert.Matches(@"(?i)wall time", cells[0].Source);
        }
    }
}
