#!/usr/bin/env bash
# Makes the test documents of tests/attachment_text.rs with real tools:
# LibreOffice (headless), pandoc, Ghostscript and Info-ZIP's zip (Debian 12:
# libreoffice-{writer,calc,impress}-nogui 7.4, pandoc 2.17, ghostscript 10.0,
# zip 3.0). Each document carries one distinctive word in its body text; the test
# finds each word by search, in its own message only. Run from this directory;
# the outputs are committed, so the tests need none of these tools.
set -euo pipefail
cd "$(dirname "$0")"
out=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME=$work   # LibreOffice keeps its profile here, not in the user's home
lo() { soffice --headless --norestore --convert-to "$@" --outdir "$out" >/dev/null 2>&1; }

# Word processing: pandoc writes DOCX, ODT, RTF and HTML from Markdown.
md() { printf '# %s\n\nThe quarterly report mentions %s in its second paragraph.\n\nA second paragraph with ordinary words.\n' "$1" "$2" > "$work/$3.md"; }
md "Report" marbletusk docx;   pandoc "$work/docx.md" -o report.docx
md "Minutes" saffronkite odt;  pandoc "$work/odt.md" -o minutes.odt
md "Letter" amberquokka rtf;   pandoc -s "$work/rtf.md" -o letter.rtf
md "Page" cobaltheron html;    pandoc -s --metadata title=Page "$work/html.md" -o page.html

# A PDF from LibreOffice (Writer, from an ODT pandoc wrote).
md "Contract" quillorbit pdf;  pandoc "$work/pdf.md" -o "$work/contract.odt"
lo pdf "$work/contract.odt"
# A PDF from Ghostscript (PostScript → PDF).
cat > "$work/invoice.ps" <<'PS'
%!PS
/Helvetica findfont 14 scalefont setfont
72 720 moveto (Invoice number 4411 for emberlattice services) show
72 700 moveto (Payable within thirty days) show
showpage
PS
gs -q -dNOPAUSE -dBATCH -dSAFER -sDEVICE=pdfwrite -sOutputFile=invoice.pdf "$work/invoice.ps"

# Spreadsheets: LibreOffice Calc from a CSV.
printf 'item,amount,note\nwidgets,12,fennelgrid\ngadgets,7,ordinary\n' > "$work/budget.csv"
lo xlsx "$work/budget.csv"
printf 'item,amount,note\nbolts,3,tundrabell\nnuts,9,ordinary\n' > "$work/stock.csv"
lo ods "$work/stock.csv"

# Presentations: pandoc writes PPTX; LibreOffice Impress turns another into ODP.
printf '# Roadmap\n\n- copperlynx launches in spring\n- ordinary bullet\n' > "$work/roadmap.md"
pandoc "$work/roadmap.md" -o roadmap.pptx
printf '# Review\n\n- velvetcomet was on budget\n- ordinary bullet\n' > "$work/review.md"
pandoc "$work/review.md" -o "$work/review.pptx"
lo odp "$work/review.pptx"

# Plain text and CSV, as written.
printf 'Notes from the call.\nRemember juniperwick before Friday.\n' > notes.txt
printf 'name,city\nlanternmoss,Oslo\nother,Bergen\n' > contacts.csv

# ZIP: a text member and a DOCX at the top, and a ZIP inside holding another.
printf 'The archive mentions harborvinyl.\n' > "$work/readme.txt"
printf 'Deep inside: glacierpoppy.\n' > "$work/deep.txt"
md "Inner" thistledrum inner; pandoc "$work/inner.md" -o "$work/inner.docx"
(cd "$work" && zip -q -X inner.zip deep.txt && zip -q -X "$out/bundle.zip" readme.txt inner.docx inner.zip)
