"""Signs the auditor in through the pages, then downloads both exports and reports rows, size,
time and the idp's resident memory (bench/export.sh). Standard library only."""
import glob, http.cookiejar, json, os, re, sys, time, urllib.parse, urllib.request

base, outbox, pid = sys.argv[1], sys.argv[2], sys.argv[3]
email, password = "auditor@example.org", "Export-Bench-2026!"
browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def page(path, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    with browser.open(base + path, data) as r:
        return r.read().decode()


def csrf(html):
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def code_since(moment):
    for _ in range(100):
        for path in sorted(glob.glob(os.path.join(outbox, "*.json")), key=os.path.getmtime, reverse=True):
            if os.path.getmtime(path) < moment:
                break
            job = json.load(open(path))
            if job["recipient"] == email and "code" in job["parameters"]:
                return job["parameters"]["code"]
        time.sleep(0.1)
    sys.exit("no code in the outbox")


def memory():
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return {k: round(int(fields[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}


page("/audit")
html = page("/login/reset")
moment = time.time() - 1
html = page("/login/reset", {"csrf": csrf(html), "email": email})
html = page("/login/reset/code", {"csrf": csrf(html), "code": code_since(moment)})
html = page("/login/password", {"csrf": csrf(html), "password": password, "confirmation": password})
moment = time.time() - 1
html = page("/login/enrol", {"csrf": csrf(html), "method": "email"})
html = page("/login/enrol/email", {"csrf": csrf(html), "code": code_since(moment)})
assert "audit" in html.lower(), "the auditor did not reach the console"

print(f"idp before the exports: RSS {memory()['VmRSS']} MiB (peak so far {memory()['VmHWM']} MiB)")
print()
print("| export | lines | MB | seconds | lines/s | idp RSS after, MiB | idp peak RSS, MiB |")
print("|---|---|---|---|---|---|---|")
for kind in ("csv", "jsonl"):
    started, lines, size = time.time(), 0, 0
    with browser.open(f"{base}/audit/export.{kind}") as r:
        while chunk := r.read(1 << 16):
            size += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.time() - started
    m = memory()
    print(f"| {kind} | {lines:,} | {size / 1e6:,.0f} | {seconds:.1f} | {lines / seconds:,.0f} | {m['VmRSS']} | {m['VmHWM']} |")
