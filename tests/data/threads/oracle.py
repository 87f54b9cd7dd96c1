#!/usr/bin/env python3
"""The threads oracle of tests/threads.rs, written apart from mailvault's code.

Reads every .eml under the directories named, parses each with Python's `email`
package, and groups them: messages are joined when one names the other's
Message-ID in In-Reply-To or References, or both name a common id (union-find
over the ids each message names; an id is any token with an `@`, angle brackets
optional, as lists mangle them). Then the subject rule: a message with neither
In-Reply-To nor References whose subject is a reply (`Re:`, `Fwd:`, ... after
list tags such as `[usrp-users]`) joins the group of the earliest message without
them whose subject is not a reply and has the same base subject.

Prints one line per file: PATH, a tab, and its group's name.
"""
import email.parser
import email.policy
import os
import re
import sys
from email.utils import parsedate_to_datetime

IDS = re.compile(r'<?([^<>\s,;"]+@[^<>\s,;"]+?)(?:>|(?=[\s,;<]|$))')
PREFIXES = ["re:", "re :", "fwd:", "fw:", "aw:", "sv:", "vs:", "antw:", "wg:", "tr:", "rif:"]

parent = {}


def find(x):
    while parent.setdefault(x, x) != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def union(a, b):
    ra, rb = find(a), find(b)
    if ra != rb:
        parent[ra] = rb


def strip_tags(s):
    while s.startswith('['):
        end = s.find(']', 1)
        if end < 0:
            break
        s = s[end + 1:].lstrip()
    return s


def strip_prefix(s):
    for p in PREFIXES:
        if s[:len(p)].lower() == p:
            return s[len(p):].lstrip()
    return None


def is_reply(s):
    return strip_prefix(strip_tags(s.strip())) is not None


def base(s):
    s = strip_tags(s.strip())
    while (rest := strip_prefix(s)) is not None:
        s = strip_tags(rest)
    return ' '.join(s.split()).lower()


def main():
    files = sorted(os.path.join(d, f) for root in sys.argv[1:] for d, _, fs in os.walk(root) for f in fs if f.endswith('.eml'))
    info = []
    for i, path in enumerate(files):
        with open(path, 'rb') as fh:
            m = email.parser.BytesHeaderParser(policy=email.policy.default).parse(fh)
        own = IDS.findall(str(m.get('Message-ID', '') or ''))
        me = 'id:' + own[0] if own else f'file:{i}'
        find(me)
        named = IDS.findall(str(m.get('References', '') or '')) + IDS.findall(str(m.get('In-Reply-To', '') or ''))
        for r in named:
            union(me, 'id:' + r)
        try:
            date = parsedate_to_datetime(str(m['Date'])).timestamp()
        except Exception:
            date = 0
        bare = not m.get('References') and not m.get('In-Reply-To')
        info.append((date, i, path, me, str(m.get('Subject', '') or ''), bare))
    started = {}
    for date, i, path, me, subject, bare in sorted(info):
        if bare and not is_reply(subject):
            started.setdefault(base(subject), me)
    for date, i, path, me, subject, bare in sorted(info):
        if bare and is_reply(subject) and base(subject) in started:
            union(me, started[base(subject)])
    for date, i, path, me, subject, bare in info:
        print(path + '\t' + ' '.join(find(me).split()))


main()
