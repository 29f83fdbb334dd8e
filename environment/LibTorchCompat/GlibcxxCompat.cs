// Compatibility fix for TorchSharp 0.107 on Debian 12 / Ubuntu 22.04.
//
// libLibTorchSharp.so was linked against libstdc++ from GCC 13+ and asks for the symbol version
// GLIBCXX_3.4.32, which older system libstdc++ builds (up to 3.4.30/31) do not define, so the loader
// refuses it. The only symbol bound to that version is `std::ios_base_library_init()`, a marker that is
// never relocated, so marking that one version requirement WEAK (VER_FLG_WEAK in the vna_flags of its
// Vernaux entry in .gnu.version_r) lets the library load and run correctly.
//
// This one file is compiled twice: into an MSBuild inline task (environment/LibTorchCompat.targets) that
// patches every copy of the library in a build output, and into the RoentGen library (ROENTGEN_LIBRARY)
// so that `roentgen doctor` can report whether the fix was needed and applied.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

#if ROENTGEN_LIBRARY
namespace RoentGen.Platform
{
#endif
    /// <summary>One version requirement (a Vernaux entry) of an ELF shared object.</summary>
    public sealed class ElfVersionNeed
    {
        /// <summary>Creates an entry.</summary>
        public ElfVersionNeed(string file, string version, ushort flags, long flagsOffset)
        {
            File = file; Version = version; Flags = flags; FlagsOffset = flagsOffset;
        }
        /// <summary>The library that must provide the version, e.g. libstdc++.so.6.</summary>
        public string File { get; }
        /// <summary>The version name, e.g. GLIBCXX_3.4.32.</summary>
        public string Version { get; }
        /// <summary>The vna_flags field; bit 0x2 is VER_FLG_WEAK.</summary>
        public ushort Flags { get; }
        /// <summary>Byte offset of vna_flags in the file.</summary>
        public long FlagsOffset { get; }
        /// <summary>True when the requirement is marked weak.</summary>
        public bool IsWeak => (Flags & GlibcxxCompat.VerFlagWeak) != 0;
    }

    /// <summary>Reads and patches the GLIBCXX version requirement of libLibTorchSharp.so.</summary>
    public static class GlibcxxCompat
    {
        /// <summary>The symbol version that TorchSharp 0.107 needs and Debian 12 lacks.</summary>
        public const string NeededVersion = "GLIBCXX_3.4.32";
        /// <summary>The native library that carries the requirement.</summary>
        public const string LibraryFileName = "libLibTorchSharp.so";
        /// <summary>VER_FLG_WEAK.</summary>
        public const ushort VerFlagWeak = 0x2;
        private const uint ShtGnuVerneed = 0x6ffffffe;

        /// <summary>Candidate locations of the system libstdc++, most common first.</summary>
        public static readonly string[] SystemLibStdCxxCandidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6",
            "/usr/lib/libstdc++.so.6",
        };

        /// <summary>The first system libstdc++ found, or null.</summary>
        public static string? FindSystemLibStdCxx()
        {
            foreach (var path in SystemLibStdCxxCandidates)
                if (System.IO.File.Exists(path)) return path;
            return null;
        }

        /// <summary>
        /// True when the system libstdc++ defines <see cref="NeededVersion"/>; false when it does not;
        /// null when no system libstdc++ was found (not Linux, or an unusual layout).
        /// </summary>
        public static bool? SystemHasNeededVersion()
        {
            var path = FindSystemLibStdCxx();
            if (path is null) return null;
            var bytes = System.IO.File.ReadAllBytes(path);
            var needle = Encoding.ASCII.GetBytes(NeededVersion + "\0");
            return IndexOf(bytes, needle) >= 0;
        }

        /// <summary>Lists every version requirement in the .gnu.version_r section of an ELF64 file.</summary>
        /// <exception cref="InvalidDataException">The file is not a well-formed little-endian ELF64 object.</exception>
        public static List<ElfVersionNeed> ReadVersionNeeds(string path)
        {
            var data = System.IO.File.ReadAllBytes(path);
            return ReadVersionNeeds(data, path);
        }

        private static List<ElfVersionNeed> ReadVersionNeeds(byte[] data, string path)
        {
            var result = new List<ElfVersionNeed>();
            if (data.Length < 64 || data[0] != 0x7f || data[1] != (byte)'E' || data[2] != (byte)'L' || data[3] != (byte)'F')
                throw new InvalidDataException($"{path}: not an ELF file");
            if (data[4] != 2 || data[5] != 1)
                throw new InvalidDataException($"{path}: only little-endian ELF64 is supported (class {data[4]}, data {data[5]})");
            long shoff = (long)U64(data, 0x28, path);
            int shentsize = U16(data, 0x3A, path);
            int shnum = U16(data, 0x3C, path);
            if (shentsize < 64) throw new InvalidDataException($"{path}: section header size {shentsize} < 64");
            for (int i = 0; i < shnum; i++)
            {
                long sh = shoff + (long)i * shentsize;
                if (U32(data, sh + 4, path) != ShtGnuVerneed) continue;
                long secOff = (long)U64(data, sh + 0x18, path);
                long secSize = (long)U64(data, sh + 0x20, path);
                int link = (int)U32(data, sh + 0x28, path);
                int count = (int)U32(data, sh + 0x2C, path);
                if (secOff < 0 || secOff + secSize > data.Length) throw new InvalidDataException($"{path}: .gnu.version_r out of range");
                long strSh = shoff + (long)link * shentsize;
                long strOff = (long)U64(data, strSh + 0x18, path);
                long strSize = (long)U64(data, strSh + 0x20, path);
                long vn = secOff;
                for (int n = 0; n < count; n++)
                {
                    int cnt = U16(data, vn + 2, path);
                    string file = CString(data, strOff, strSize, U32(data, vn + 4, path), path);
                    long aux = vn + U32(data, vn + 8, path);
                    for (int a = 0; a < cnt; a++)
                    {
                        ushort flags = (ushort)U16(data, aux + 4, path);
                        string name = CString(data, strOff, strSize, U32(data, aux + 8, path), path);
                        result.Add(new ElfVersionNeed(file, name, flags, aux + 4));
                        uint nextAux = U32(data, aux + 12, path);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }
                    uint next = U32(data, vn + 12, path);
                    if (next == 0) break;
                    vn += next;
                }
            }
            return result;
        }

        /// <summary>
        /// Marks the <see cref="NeededVersion"/> requirement of one file weak. Idempotent; keeps the file's
        /// timestamp so that incremental copies do not overwrite it again. The patched bytes go into a copy that
        /// then replaces the file, so a build output hard-linked to the NuGet package cache never changes the cache.
        /// </summary>
        /// <returns>"patched", "already-weak" or "not-required".</returns>
        public static string MakeNeededVersionWeak(string path)
        {
            var needs = ReadVersionNeeds(path);
            string outcome = "not-required";
            var stamp = System.IO.File.GetLastWriteTimeUtc(path);
            string? copy = null;
            try
            {
                foreach (var need in needs)
                {
                    if (need.Version != NeededVersion) continue;
                    if (need.IsWeak) { if (outcome == "not-required") outcome = "already-weak"; continue; }
                    if (copy == null)
                    {
                        copy = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
                        System.IO.File.Copy(path, copy);   // keeps the file's permissions
                    }
                    using (var fs = new FileStream(copy, FileMode.Open, FileAccess.ReadWrite))
                    {
                        fs.Position = need.FlagsOffset;
                        ushort flags = (ushort)(need.Flags | VerFlagWeak);
                        fs.WriteByte((byte)(flags & 0xff));
                        fs.WriteByte((byte)(flags >> 8));
                    }
                    outcome = "patched";
                }
                if (copy != null)
                {
                    System.IO.File.SetLastWriteTimeUtc(copy, stamp);
                    System.IO.File.Replace(copy, path, null);   // a rename: the old inode (and any link to it) is left as it was
                    copy = null;
                }
            }
            finally
            {
                if (copy != null && System.IO.File.Exists(copy)) System.IO.File.Delete(copy);
            }
            return outcome;
        }

        /// <summary>Every copy of <see cref="LibraryFileName"/> below a folder.</summary>
        public static IEnumerable<string> FindLibraries(string root) =>
            Directory.Exists(root)
                ? Directory.EnumerateFiles(root, LibraryFileName, SearchOption.AllDirectories)
                : Array.Empty<string>();

        private static int IndexOf(byte[] haystack, byte[] needle)
        {
            for (int i = 0; i <= haystack.Length - needle.Length; i++)
            {
                if (haystack[i] != needle[0]) continue;
                int j = 1;
                while (j < needle.Length && haystack[i + j] == needle[j]) j++;
                if (j == needle.Length) return i;
            }
            return -1;
        }

        private static void Check(byte[] d, long off, int len, string path)
        {
            if (off < 0 || off + len > d.Length)
                throw new InvalidDataException($"{path}: ELF field at offset {off} lies beyond the file ({d.Length} bytes)");
        }
        private static int U16(byte[] d, long o, string p) { Check(d, o, 2, p); return d[o] | (d[o + 1] << 8); }
        private static uint U32(byte[] d, long o, string p) { Check(d, o, 4, p); return BitConverter.ToUInt32(d, (int)o); }
        private static ulong U64(byte[] d, long o, string p) { Check(d, o, 8, p); return BitConverter.ToUInt64(d, (int)o); }
        private static string CString(byte[] d, long strOff, long strSize, uint index, string p)
        {
            long start = strOff + index;
            if (index >= strSize) throw new InvalidDataException($"{p}: string index {index} beyond .dynstr ({strSize} bytes)");
            long end = start;
            while (end < strOff + strSize && end < d.Length && d[end] != 0) end++;
            return Encoding.ASCII.GetString(d, (int)start, (int)(end - start));
        }
    }

#if !ROENTGEN_LIBRARY
    /// <summary>MSBuild task: patches every libLibTorchSharp.so below a folder when the system needs it.</summary>
    public class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
    {
        /// <summary>Folders to scan (an output or publish folder).</summary>
        [Microsoft.Build.Framework.Required]
        public string[] Folders { get; set; } = Array.Empty<string>();

        /// <summary>Runs the task.</summary>
        public override bool Execute()
        {
            if (!System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux)) return true;
            bool? has = GlibcxxCompat.SystemHasNeededVersion();
            if (has != false)
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low,
                    has == true ? "libstdc++ defines " + GlibcxxCompat.NeededVersion + ": no TorchSharp patch needed"
                                : "no system libstdc++ found: TorchSharp patch skipped");
                return true;
            }
            foreach (var folder in Folders)
            {
                foreach (var lib in GlibcxxCompat.FindLibraries(folder))
                {
                    try
                    {
                        string outcome = GlibcxxCompat.MakeNeededVersionWeak(lib);
                        Log.LogMessage(outcome == "patched" ? Microsoft.Build.Framework.MessageImportance.High : Microsoft.Build.Framework.MessageImportance.Low,
                            $"LibTorchCompat: {lib}: {outcome}");
                    }
                    catch (Exception ex)
                    {
                        Log.LogError($"LibTorchCompat: could not patch {lib}: {ex.Message}");
                    }
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
#if ROENTGEN_LIBRARY
}
#endif
