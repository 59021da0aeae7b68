#!/usr/bin/env python3
"""Generate a large, deterministic, realistic-looking ruleset for the audit benchmark.

usage: gen_ruleset.py RULES FORMAT(nft-json|iptables-save) OUT [SEED] [SHAPE]

SHAPE `flat` (the default) keeps a third of the rules in a few user chains; `chains` is
chain-heavy, like shorewall or a zone-pair firewall: hundreds of user chains (at least
300, one per 100 rules), most rules in them, a third of their rules jumping on to a later
chain.

The ruleset has input, output and forward base chains that dispatch into user chains by
address and interface, rules with mixed IPv4/IPv6 addresses and prefixes, port ranges,
anonymous and named sets, negations, conntrack matches, and verdict maps. A share of the
rules touch the demo appliance's addresses (192.0.2.10, 2001:db8:0:1::10) so that the audit
has real work to do on every chain it walks.
"""
import json
import random
import sys


def main():
    n = int(sys.argv[1])
    fmt = sys.argv[2]
    out = sys.argv[3]
    rnd = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 7)
    heavy = len(sys.argv) > 5 and sys.argv[5] == "chains"

    def v4():
        r = rnd.random()
        if r < 0.05:
            return "192.0.2.%d" % rnd.choice([10, 20, 25, 30, rnd.randint(1, 254)])
        if r < 0.45:
            return "10.%d.%d.%d" % (rnd.randint(0, 255), rnd.randint(0, 255), rnd.randint(1, 254))
        if r < 0.65:
            return "172.%d.%d.%d" % (rnd.randint(16, 31), rnd.randint(0, 255), rnd.randint(1, 254))
        return "%d.%d.%d.%d" % (rnd.randint(1, 223), rnd.randint(0, 255), rnd.randint(0, 255), rnd.randint(1, 254))

    def v4net():
        a = v4()
        plen = rnd.choice([32, 32, 32, 24, 24, 16, 28, 8])
        parts = [int(x) for x in a.split(".")]
        val = (parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]
        val &= (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
        return "%d.%d.%d.%d" % (val >> 24, (val >> 16) & 255, (val >> 8) & 255, val & 255), plen

    def v6():
        if rnd.random() < 0.05:
            return "2001:db8:0:1::%x" % rnd.choice([0x10, 0x20, rnd.randint(1, 0xfff)])
        return "2001:db8:%x:%x::%x" % (rnd.randint(0, 0xffff), rnd.randint(0, 0xffff), rnd.randint(1, 0xffff))

    def port():
        return rnd.choice([22, 25, 53, 80, 110, 123, 143, 443, 465, 587, 993, 995, 2703, 3389, 5000, 8080, rnd.randint(1, 65535)])

    def prange():
        a = rnd.randint(1024, 60000)
        return a, a + rnd.randint(1, 2000)

    chains = {"input": [], "output": [], "forward": []}
    users = ["zone%d" % i for i in range(max(300, n // 100) if heavy else max(4, n // 400))]
    for u in users:
        chains[u] = []
    named_sets = ["hosts%d" % i for i in range(max(2, n // 2000))]
    set_elems = {s: sorted({v4() for _ in range(rnd.randint(20, 200))}) for s in named_sets}

    def rule(chain):
        """A rule as a dict of abstract parts, rendered per format below."""
        r = {"fam": rnd.choice(["4", "4", "4", "6"]), "neg": rnd.random() < 0.1}
        k = rnd.random()
        if k < 0.35:
            r["saddr"] = v4net() if r["fam"] == "4" else (v6(), 128)
        elif k < 0.7:
            r["daddr"] = v4net() if r["fam"] == "4" else (v6(), 128)
        elif k < 0.8 and r["fam"] == "4":
            r["set"] = rnd.choice(named_sets)
        r["proto"] = rnd.choice(["tcp", "tcp", "udp", None])
        if r["proto"]:
            m = rnd.random()
            if m < 0.5:
                r["dport"] = (port(),)
            elif m < 0.75:
                r["dport"] = prange()
            else:
                r["dports"] = sorted({port() for _ in range(rnd.randint(2, 6))})
        if rnd.random() < 0.05:
            r["ct"] = rnd.choice(["new", "established,related"])
        if chain in ("input", "output", "forward") and rnd.random() < (0.4 if heavy else 0.15):
            r["verdict"] = ("jump", rnd.choice(users))
        elif heavy and chain in users and users.index(chain) + 1 < len(users) and rnd.random() < 0.33:
            # On to a later chain only: the jumps form no loop.
            r["verdict"] = ("jump", rnd.choice(users[users.index(chain) + 1:]))
        else:
            r["verdict"] = (rnd.choice(["accept", "accept", "drop", "reject"]),)
        return r

    # Distribute n rules: 40% input, 40% output, 20% forward, a third of each in user chains.
    for i in range(n):
        c = rnd.random()
        base = "input" if c < 0.4 else ("output" if c < 0.8 else "forward")
        chain = base if rnd.random() < (0.2 if heavy else 0.66) else rnd.choice(users)
        chains[chain].append(rule(chain))

    if fmt == "nft-json":
        objs = [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
                {"table": {"family": "inet", "name": "filter", "handle": 1}}]
        h = 1
        for s in named_sets:
            h += 1
            objs.append({"set": {"family": "inet", "name": s, "table": "filter", "type": "ipv4_addr",
                                 "handle": h, "elem": set_elems[s]}})
        for c in chains:
            h += 1
            ch = {"family": "inet", "table": "filter", "name": c, "handle": h}
            if c in ("input", "output", "forward"):
                ch.update({"type": "filter", "hook": c, "prio": 0, "policy": "drop"})
            objs.append({"chain": ch})
        for c, rules in chains.items():
            for r in rules:
                h += 1
                expr = []
                op = "!=" if r["neg"] else "=="
                fam = "ip" if r["fam"] == "4" else "ip6"
                for f in ("saddr", "daddr"):
                    if f in r:
                        a, plen = r[f]
                        right = a if plen in (32, 128) else {"prefix": {"addr": a, "len": plen}}
                        expr.append({"match": {"op": op, "left": {"payload": {"protocol": fam, "field": f}}, "right": right}})
                if "set" in r:
                    expr.append({"match": {"op": op, "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@" + r["set"]}})
                if r["proto"]:
                    left = {"payload": {"protocol": r["proto"], "field": "dport"}}
                    if "dport" in r:
                        d = r["dport"]
                        right = d[0] if len(d) == 1 else {"range": list(d)}
                        expr.append({"match": {"op": "==", "left": left, "right": right}})
                    elif "dports" in r:
                        expr.append({"match": {"op": "==", "left": left, "right": {"set": r["dports"]}}})
                    else:
                        expr.append({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": r["proto"]}})
                if "ct" in r:
                    expr.append({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": r["ct"].split(",")}})
                v = r["verdict"]
                if v[0] == "jump":
                    expr.append({"jump": {"target": v[1]}})
                elif v[0] == "reject":
                    expr.append({"reject": None})
                else:
                    expr.append({v[0]: None})
                objs.append({"rule": {"family": "inet", "table": "filter", "chain": c, "handle": h, "expr": expr}})
        with open(out, "w") as f:
            json.dump({"nftables": objs}, f)
        return

    # iptables-save: an IPv4 and an IPv6 filter table.
    up = {"input": "INPUT", "output": "OUTPUT", "forward": "FORWARD"}
    lines = []
    for fam in ("4", "6"):
        lines.append("# Generated by %s v1.8.9 (nf_tables)" % ("iptables-save" if fam == "4" else "ip6tables-save"))
        lines.append("*filter")
        for c in ("input", "forward", "output"):
            lines.append(":%s DROP [0:0]" % up[c])
        for u in users:
            lines.append(":%s - [0:0]" % u.upper())
        for c, rules in chains.items():
            name = up.get(c, c.upper())
            for r in rules:
                if r["fam"] != fam:
                    continue
                w = ["-A", name]
                neg = "! " if r["neg"] else ""
                for f, opt in (("saddr", "-s"), ("daddr", "-d")):
                    if f in r:
                        a, plen = r[f]
                        w.append("%s%s %s/%d" % (neg, opt, a, plen))
                if "set" in r:
                    w.append("-m set %s--match-set %s dst" % (neg, r["set"]))
                if r["proto"]:
                    w.append("-p %s" % r["proto"])
                    if "dport" in r:
                        d = r["dport"]
                        w.append("-m %s --dport %s" % (r["proto"], str(d[0]) if len(d) == 1 else "%d:%d" % d))
                    elif "dports" in r:
                        w.append("-m multiport --dports %s" % ",".join(str(p) for p in r["dports"]))
                if "ct" in r:
                    w.append("-m conntrack --ctstate %s" % r["ct"].upper().replace("ESTABLISHED,RELATED", "RELATED,ESTABLISHED"))
                v = r["verdict"]
                w.append("-j %s" % (v[1].upper() if v[0] == "jump" else v[0].upper()))
                lines.append(" ".join(w))
        lines.append("COMMIT")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(out + ".ipset", "w") as f:
        for s in named_sets:
            f.write("create %s hash:ip family inet hashsize 1024 maxelem 65536\n" % s)
            for e in set_elems[s]:
                f.write("add %s %s\n" % (s, e))


if __name__ == "__main__":
    main()
