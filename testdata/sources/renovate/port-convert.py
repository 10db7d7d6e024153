import json, re, sys
COMMIT = "c2dd4f856f068eeda4c10afc3752c35fe1f6cab1"
KEEP = ("depName", "packageName", "currentValue", "currentDigest", "skipReason", "datasource", "replaceString")

def snaps(path):
    out = {}
    try:
        text = open(path).read()
    except FileNotFoundError:
        return out
    for m in re.finditer(r"exports\[`(.*?) 1`\] = `\n(.*?)\n`;", text, re.S):
        body = m.group(2).replace("undefined", "null").replace("\\`", "`").replace("\\$", "$")
        body = re.sub(r",(\s*[\]}])", r"\1", body)
        out[m.group(1).rsplit(" > ", 1)[-1]] = json.loads(body)
    return out

def dep(d):
    return {k: d.get(k) for k in KEEP if k in d}

for m in ("dockerfile", "docker-compose", "github-actions"):
    recs = json.load(open(f"{m}.json"))
    sn = snaps(f"{m}.snap")
    rows = []
    for r in recs:
        if r.get("error") and r.get("expected") is None:
            continue
        exp = r.get("expected")
        if r.get("kind") == "snapshot":
            exp = sn.get(r["test"])
        if r.get("kind") == "length" or exp is None and r.get("kind") != "null":
            continue
        if isinstance(exp, dict) and "deps" in exp:
            exp = exp["deps"]
        if exp is not None and not isinstance(exp, list):
            continue
        deps = None if exp is None else [dep(d) for d in exp if isinstance(d, dict)]
        if m != "dockerfile" and deps is not None:
            deps = [d for d in deps if d.get("datasource") == "docker"]
            if not deps and r.get("kind") != "null":
                continue  # an Actions row about actions, not images
        rows.append({"test": r["test"], "file": r.get("fileName") or "", "input": r["input"], "deps": deps,
                     "partial": r.get("kind") == "match"})
    doc = {"source": f"github:renovatebot/renovate@{COMMIT}:lib/modules/manager/{m}/extract.spec.ts",
           "rows": rows}
    json.dump(doc, open(f"out-{m}.json", "w"), indent=1, ensure_ascii=False)
    print(m, len(rows))
