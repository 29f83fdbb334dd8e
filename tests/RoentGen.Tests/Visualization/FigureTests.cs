using System.Globalization;
using System.Text.Json;

namespace RoentGen.Tests.Visualization;

public class FigureTests
{
    private static Figure Sample() => new("a title: ᾱ <b>&</b>",
        [
            new ScatterTrace
            {
                Name = "loss", Mode = ScatterMode.LinesMarkers, X = [1, 2, 3], Y = [0.5, double.NaN, 0.25], Text = ["a", "b", "c"], Opacity = 0.4,
                Line = new LineStyle { Color = "#1f77b4", Width = 1.5, Dash = LineDash.Dash },
            },
            new ScatterTrace
            {
                Name = "age", Mode = ScatterMode.Markers, X = [0, 1], Y = [1, 0], SecondYAxis = true, ShowLegend = false,
                Marker = new MarkerStyle { ColorValues = [30, 90], ColorScale = "Viridis", ShowScale = true, ColorBarTitle = "age", Size = 8 },
            },
            new BarTrace { Name = "views", Categories = ["AP", "PA"], Values = [3, 4], Color = "red" },
            new BarTrace { Name = "female", Positions = [22.5, 27.5], Values = [1, double.PositiveInfinity], Width = 5 },
        ],
        new FigureLayout
        {
            XAxis = new FigureAxis { Title = "step", Range = new AxisRange(1, 1000), Log = true },
            YAxis = new FigureAxis { Title = "loss", Range = new AxisRange(0, 1) },
            YAxis2 = new FigureAxis { Title = "prototypes", FromZero = true },
            Width = 800, Height = 400, ShowLegend = true, LegendTitle = "series", Legend = LegendPosition.Top, BarMode = BarMode.Overlay, BarGap = 0,
        });

    [Fact]
    public void Json_has_plotly_names_and_round_trips()
    {
        var figure = Sample();
        var json = figure.ToJson();
        using var doc = JsonDocument.Parse(json);
        var data = doc.RootElement.GetProperty("data");
        Assert.Equal(["scatter", "scatter", "bar", "bar"], data.EnumerateArray().Select(t => t.GetProperty("type").GetString()));
        Assert.Equal("lines+markers", data[0].GetProperty("mode").GetString());
        Assert.Equal("dash", data[0].GetProperty("line").GetProperty("dash").GetString());
        Assert.Equal("y2", data[1].GetProperty("yaxis").GetString());
        Assert.Equal("Viridis", data[1].GetProperty("marker").GetProperty("colorscale").GetString());
        Assert.Equal("age", data[1].GetProperty("marker").GetProperty("colorbar").GetProperty("title").GetProperty("text").GetString());
        Assert.Equal(JsonValueKind.String, data[2].GetProperty("x")[0].ValueKind);
        Assert.Equal(JsonValueKind.Number, data[3].GetProperty("x")[0].ValueKind);
        var layout = doc.RootElement.GetProperty("layout");
        Assert.Equal("a title: ᾱ <b>&</b>", layout.GetProperty("title").GetProperty("text").GetString());
        Assert.Equal("log", layout.GetProperty("xaxis").GetProperty("type").GetString());
        Assert.Equal([0.0, 3.0], layout.GetProperty("xaxis").GetProperty("range").EnumerateArray().Select(v => v.GetDouble()));  // log10 for log axes
        Assert.Equal("right", layout.GetProperty("yaxis2").GetProperty("side").GetString());
        Assert.Equal("tozero", layout.GetProperty("yaxis2").GetProperty("rangemode").GetString());
        Assert.Equal("y", layout.GetProperty("yaxis2").GetProperty("overlaying").GetString());
        Assert.Equal("overlay", layout.GetProperty("barmode").GetString());
        Assert.Equal("h", layout.GetProperty("legend").GetProperty("orientation").GetString());

        var back = Figure.FromJson(json);
        Assert.Equal(json, back.ToJson());
        Assert.Equal(figure.ToJson(indented: true), back.ToJson(indented: true));
        Assert.Equal(figure.Title, back.Title);
        Assert.Equal(1000, back.Layout.XAxis!.Range!.Value.Max, 9);
        var bar = Assert.IsType<BarTrace>(back.Traces[2]);
        Assert.Equal(["AP", "PA"], bar.Categories!);
        Assert.Null(bar.Positions);
        Assert.Equal([22.5, 27.5], Assert.IsType<BarTrace>(back.Traces[3]).Positions!);
        Assert.Equal(LegendPosition.Top, back.Layout.Legend);
        Assert.True(back.Layout.YAxis2!.FromZero);
    }

    [Fact]
    public void Non_finite_numbers_are_written_as_null_and_read_back_as_NaN()
    {
        var json = Sample().ToJson();
        Assert.DoesNotContain("NaN", json);
        Assert.DoesNotContain("Infinity", json);
        using var doc = JsonDocument.Parse(json);
        var data = doc.RootElement.GetProperty("data");
        Assert.Equal(JsonValueKind.Null, data[0].GetProperty("y")[1].ValueKind);
        Assert.Equal(JsonValueKind.Null, data[3].GetProperty("y")[1].ValueKind);
        var back = Figure.FromJson(json);
        Assert.True(double.IsNaN(((ScatterTrace)back.Traces[0]).Y[1]));
        Assert.True(double.IsNaN(((BarTrace)back.Traces[3]).Values[1]));
        Assert.Equal(0.25, ((ScatterTrace)back.Traces[0]).Y[2]);
    }

    [Fact]
    public void Json_is_culture_invariant()
    {
        var saved = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = new CultureInfo("de-DE");
            var json = new Figure("t", [new ScatterTrace { X = [1.5], Y = [1234.25] }]).ToJson();
            Assert.Contains("[1.5]", json);
            Assert.Contains("[1234.25]", json);
        }
        finally { CultureInfo.CurrentCulture = saved; }
    }

    [Fact]
    public void Lists_are_copied_so_later_changes_to_the_callers_arrays_do_not_show()
    {
        double[] y = [1, 2];
        var trace = new ScatterTrace { X = [0, 1], Y = y };
        y[0] = 99;
        Assert.Equal(1, trace.Y[0]);
        Assert.Throws<NotSupportedException>(() => ((IList<double>)trace.Y)[0] = 5);
    }

    [Fact]
    public void Inconsistent_traces_are_errors_naming_the_trace()
    {
        var e = Assert.Throws<InvalidOperationException>(() => new Figure("t", [new ScatterTrace { Name = "bad", X = [1, 2], Y = [1] }]).ToJson());
        Assert.Contains("\"bad\"", e.Message);
        Assert.Contains("x has 2 values, y has 1", e.Message);
        e = Assert.Throws<InvalidOperationException>(() => new Figure("t", [new BarTrace { Values = [1] }]).ToJson());
        Assert.Contains("Categories and Positions", e.Message);
        e = Assert.Throws<InvalidOperationException>(() => new Figure("t", [new ScatterTrace { X = [1], Y = [1], Text = ["a", "b"] }]).ToJson());
        Assert.Contains("2 hover texts for 1 points", e.Message);
    }

    [Fact]
    public void Json_that_is_not_a_figure_of_scatter_and_bar_traces_is_rejected_with_the_reason()
    {
        Assert.Contains("not valid JSON", Assert.Throws<InvalidDataException>(() => Figure.FromJson("{")).Message);
        Assert.Contains("data[0].type \"heatmap\"", Assert.Throws<InvalidDataException>(() => Figure.FromJson("{\"data\":[{\"type\":\"heatmap\"}]}")).Message);
        Assert.Contains("data[0].y[1]", Assert.Throws<InvalidDataException>(() => Figure.FromJson("{\"data\":[{\"type\":\"scatter\",\"x\":[1,2],\"y\":[1,\"a\"]}]}")).Message);
        var minimal = Figure.FromJson("{\"data\":[{\"x\":[1],\"y\":[2]}],\"layout\":{\"title\":\"old style\",\"template\":{}}}");
        Assert.Equal("old style", minimal.Title);
        Assert.IsType<ScatterTrace>(Assert.Single(minimal.Traces));
    }

    [Fact]
    public void ToString_names_title_and_traces()
    {
        Assert.Equal("figure \"a title: ᾱ <b>&</b>\": 4 traces (scatter, bar)", Sample().ToString());
    }
}
