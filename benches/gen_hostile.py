#!/usr/bin/env python3
"""Hostile inputs for portolan's parsers (issue "never widen, never trust"): each once cost
time exponential or quadratic in its size, or memory far beyond it. Used by
benches/hostile_inputs.sh (full size) and, cut down, as fuzz seeds.

Usage: gen_hostile.py DIR [--small]"""
import os
import sys

out = sys.argv[1]
small = "--small" in sys.argv
os.makedirs(out, exist_ok=True)


def write(name, text):
    with open(os.path.join(out, name), "w") as f:
        f.write(text)


# audit: 20 chains, each jumping twice to the next (2^20 walks before the fix), 890 bytes.
lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
lines += [f":C{i} - [0:0]" for i in range(20)]
lines += ["-A INPUT -j C0", "-A OUTPUT -j C0"]
for i in range(19):
    lines += [f"-A C{i} -j C{i + 1}", f"-A C{i} -j C{i + 1}"]
lines += ["-A C19 -p tcp -m tcp --dport 22 -j ACCEPT", "COMMIT"]
write("jump-bomb.rules", "\n".join(lines) + "\n")

# import: one line of 200,000 `|` under a separated table header (rescanned per separator).
n = 20_000 if small else 200_000
write("pipes.txt", "Port | Protocol | Direction |\n--- | --- | ---\n" + "|" * n + "\n")

# import: a 6 MB bullet list (1 GB before).
size = 60_000 if small else 6_000_000
parts, total, i = [], 0, 0
while total < size:
    line = f"- Port {1000 + i % 60000}/tcp to update{i}.example.com for updates\n"
    parts.append(line)
    total += len(line)
    i += 1
write("bullets.txt", "".join(parts))

# diagnostics: a 1 MB profile with 8,000 errors (every diagnostic copied the file before).
size = 60_000 if small else 1_000_000
parts, total, i = ['id = "dup"\nname = "Dup"\nvendor = "V"\n'], 0, 0
while total < size:
    block = (
        f'[[flows]]\nid = "same"\nfunction = "f{i}"\nfrom = "appliance"\n'
        f'to = "Bad_{i}.example.com"\nprotocols = ["tcp"]\nports = [443]\n\n'
    )
    parts.append(block)
    total += len(block)
    i += 1
write("errors.toml", "".join(parts))
