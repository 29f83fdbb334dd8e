namespace RoentGen.Visualization;

/// <summary>
/// Something that can show itself as a PNG picture. The notebook runner emits these as image/png
/// display data; the notebook formatters embed the same bytes in HTML.
/// </summary>
public interface IPngDisplayable
{
    /// <summary>Encodes the object as a PNG file's bytes.</summary>
    byte[] ToPng();
}
