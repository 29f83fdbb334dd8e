#!/usr/bin/env bash
# Runs notebooks at their default settings in the real .NET Interactive kernel (the pinned dotnet-interactive, through
# `roentgen notebook run`) and writes, for each, notebooks/executed/NAME.ipynb (with outputs) and NAME.html (one
# self-contained page: `roentgen notebook export --to html`), plus its wall time in notebooks/executed/times.txt.
#
#   bash notebooks/execute.sh                  # 00-05, the teaching notebooks
#   bash notebooks/execute.sh 02 04            # only these (by number or file name)
#   bash notebooks/execute.sh 02 -- -p ldmSteps=200   # extra arguments after -- go to every `notebook run`
#
# notebooks/executed/ is git-ignored: each page embeds plotly.js and its images (over 1 MB), so the pages are published
# beside the repository (see notebooks/README.md), not committed. Defaults take long on 2 cores (the first cell of each
# notebook gives its time); the quickstart's model (data/generated/quickstart) makes 03 much faster.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
picks=(); extra=()
while [[ $# -gt 0 ]]; do
  if [[ "$1" == "--" ]]; then shift; extra=("$@"); break; fi
  picks+=("$1"); shift
done
[[ ${#picks[@]} -eq 0 ]] && picks=(00 01 02 03 04 05)
dotnet build RoentGen.Notebooks.sln -c Release -nologo -v q >/dev/null
roentgen="$root/lib/RoentGen.Cli/bin/Release/net10.0/roentgen"
out="$root/notebooks/executed"
mkdir -p "$out"
for pick in "${picks[@]}"; do
  matches=("$root"/notebooks/"${pick%.ipynb}"*.ipynb)
  [[ -e "${matches[0]}" ]] || { echo "no notebook matches '$pick'" >&2; exit 2; }
  nb="${matches[0]}"
  name="$(basename "$nb" .ipynb)"
  start=$(date +%s)
  "$roentgen" notebook run "$nb" --out "$out/$name.ipynb" "${extra[@]}"
  seconds=$(( $(date +%s) - start ))
  "$roentgen" notebook export "$out/$name.ipynb" --to html --out "$out/$name.html"
  echo "$name: ${seconds} s on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)${extra[*]:+ (${extra[*]})}" | tee -a "$out/times.txt"
done
