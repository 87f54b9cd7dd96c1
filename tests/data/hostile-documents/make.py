#!/usr/bin/env python3
"""Makes the hostile documents of tests/attachment_text.rs (Python 3.11's zipfile
and zlib; the truncated DOCX is ../documents/report.docx cut short). Run from this
directory; the outputs are committed.

- bomb.zip: a 42.zip-style bomb: 4 levels of 16 ZIPs each over a ZIP holding
  1 GiB of zeros (64 TiB if every level were unpacked).
- deep.zip: ZIPs nested 100 deep, the innermost holding a text file.
- cyclic.pdf: a page tree whose Kids name the tree itself, and a page whose Form
  XObject draws itself.
- huge-stream.pdf: one page whose content stream inflates to 500 MiB.
- truncated.docx: the first 60% of report.docx.
- nested.pdf: a catalog holding an array nested 100,000 deep, which overflows
  lopdf 0.38's stack (the process aborts; kept as a regression input: the
  extractor refuses it before lopdf parses it).
"""
import io, zipfile, zlib

def zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()

def bomb():
    # Innermost: a ZIP with one member of 1 GiB of zeros, written with zipfile's
    # streaming writer (the data is never all in memory).
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("zeros.bin", "w", force_zip64=True) as m:
            chunk = bytes(1 << 20)
            for _ in range(1024):
                m.write(chunk)
    level = buf.getvalue()
    for depth in range(4):
        level = zip_bytes([(f"{depth}-{i:x}.zip", level) for i in range(16)])
    return level

def deep():
    data = zip_bytes([("bottom.txt", b"The bottom of the well says abyssmarker.\n")])
    for i in range(99):
        data = zip_bytes([(f"level{99 - i}.zip", data)])
    return data

def pdf(objects, root=1):
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for o in offsets:
        out += f"{o:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)

def stream(dict_extra, data):
    return f"<< /Length {len(data)} {dict_extra}>>\nstream\n".encode() + data + b"\nendstream"

FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"

def cyclic():
    text = b"BT /F1 12 Tf 72 720 Td (cyclic page text) Tj ET /X1 Do"
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        # The page tree lists itself among its kids.
        b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 /Parent 2 0 R >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> /XObject << /X1 6 0 R >> >> >>",
        stream("", text),
        FONT,
        # A form that draws itself.
        stream("/Type /XObject /Subtype /Form /BBox [0 0 612 792] "
               "/Resources << /XObject << /X1 6 0 R >> /Font << /F1 5 0 R >> >> ",
               b"BT /F1 12 Tf (form) Tj ET /X1 Do"),
    ])

def huge_stream():
    co = zlib.compressobj(9)
    chunk = b"BT /F1 12 Tf 72 720 Td (huge) Tj ET\n" * 1000
    data = b"".join(co.compress(chunk) for _ in range((500 << 20) // len(chunk))) + co.flush()
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        stream("/Filter /FlateDecode ", data),
        FONT,
    ])

def nested():
    n = 100_000
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R /Deep " + b"[" * n + b"]" * n + b" >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
    ])

def main():
    for name, data in [("bomb.zip", bomb()), ("deep.zip", deep()),
                       ("cyclic.pdf", cyclic()), ("huge-stream.pdf", huge_stream()),
                       ("nested.pdf", nested())]:
        open(name, "wb").write(data)
    docx = open("../documents/report.docx", "rb").read()
    open("truncated.docx", "wb").write(docx[: len(docx) * 6 // 10])

main()
