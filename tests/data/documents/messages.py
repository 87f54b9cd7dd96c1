#!/usr/bin/env python3
"""Writes messages.mbox: one message per test document (made by make.sh), the
document attached under its declared type, and a forwarded message
(message/rfc822) with an attachment of its own. Also ../hostile-documents/
hostile.mbox: one message per hostile document, each body with its own marker
word. Python 3.11's email package; fixed dates and ids, so the output is the
same on every run. Run from this directory after make.sh and make.py."""
import email.policy, mailbox, os
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timezone

DOCUMENTS = [
    ("contract.pdf", "application/pdf"),
    ("invoice.pdf", "application/pdf"),
    ("report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("roadmap.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ("minutes.odt", "application/vnd.oasis.opendocument.text"),
    ("stock.ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ("review.odp", "application/vnd.oasis.opendocument.presentation"),
    ("letter.rtf", "application/rtf"),
    ("page.html", "text/html"),
    ("notes.txt", "text/plain"),
    ("contacts.csv", "text/csv"),
    ("bundle.zip", "application/zip"),
]
HOSTILE = ["bomb.zip", "deep.zip", "cyclic.pdf", "huge-stream.pdf", "truncated.docx", "nested.pdf"]

def message(n, subject, msgid, body):
    m = EmailMessage(policy=email.policy.SMTP)
    m["From"] = "Ann Archer <ann@example.org>"
    m["To"] = "Bob Baker <bob@example.org>"
    m["Subject"] = subject
    m["Date"] = format_datetime(datetime(2021, 3, 1 + n, 9, 0, tzinfo=timezone.utc))
    m["Message-ID"] = f"<{msgid}@documents.mailvault.test>"
    m.set_content(body)
    return m

def attach(m, path, mime):
    main, sub = mime.split("/")
    data = open(path, "rb").read()
    if main == "text":
        m.add_attachment(data.decode("utf-8"), subtype=sub, filename=os.path.basename(path))
    else:
        m.add_attachment(data, maintype=main, subtype=sub, filename=os.path.basename(path))

def write(path, messages):
    if os.path.exists(path):
        os.remove(path)
    box = mailbox.mbox(path)
    for m in messages:
        box.add(m)
    box.flush()

def main():
    out = []
    for n, (name, mime) in enumerate(DOCUMENTS):
        m = message(n, f"Document {name}", name, f"Please find {name} attached.\n")
        attach(m, name, mime)
        out.append(m)
    inner = message(20, "Travel plans", "forwarded-inner", "The forwarded message mentions pebblegarnet.\n")
    inner.add_attachment("An attachment of the forwarded message: driftwoodsonnet.\n", filename="itinerary.txt")
    outer = message(21, "Fwd: Travel plans", "forwarded", "Forwarding this one.\n")
    outer.add_attachment(inner)
    out.append(outer)
    write("messages.mbox", out)
    hostile = []
    for n, name in enumerate(HOSTILE):
        m = message(n, f"Hostile {name}", f"hostile-{name}", f"Hostile sample hostilemarker{n} attached.\n")
        attach(m, f"../hostile-documents/{name}", "application/octet-stream")
        hostile.append(m)
    write("../hostile-documents/hostile.mbox", hostile)

main()
