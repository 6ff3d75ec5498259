"""An SHL decoder written from the SMART Health Links specification, independent of the
gateway: it reads a `shlink:/` (bare or after a viewer URL's `#`), checks the payload,
POSTs to the manifest URL, fetches each file (embedded, or by its `location`), decrypts the
JWE with PyPI jwcrypto and prints one JSON object describing what happened.

    python shl_decode.py LINK RECIPIENT [--passcode P] [--embedded-length-max N]
"""
import argparse
import base64
import json
import sys
import urllib.error
import urllib.request

from jwcrypto import jwe, jwk


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("link")
    ap.add_argument("recipient")
    ap.add_argument("--passcode")
    ap.add_argument("--embedded-length-max", type=int)
    a = ap.parse_args()

    text = a.link.strip()
    if "#" in text:
        text = text.split("#", 1)[1]
    assert text.startswith("shlink:/"), "not a shlink"
    payload = json.loads(b64url_decode(text[len("shlink:/"):]))
    problems = []
    if not isinstance(payload.get("url"), str):
        problems.append("url missing")
    if not isinstance(payload.get("key"), str) or len(payload["key"]) != 43:
        problems.append("key is not 43 characters")
    if "exp" in payload and not isinstance(payload["exp"], int):
        problems.append("exp is not a number")
    if "label" in payload and len(payload["label"]) > 80:
        problems.append("label longer than 80")
    if payload.get("v", 1) != 1:
        problems.append("unknown version")
    for f in payload.get("flag", ""):
        if f not in "LPU":
            problems.append("unknown flag " + f)
    if "U" in payload.get("flag", ""):
        problems.append("U flag: direct file, not supported by this decoder")

    body = {"recipient": a.recipient}
    if a.passcode is not None:
        body["passcode"] = a.passcode
    if a.embedded_length_max is not None:
        body["embeddedLengthMax"] = a.embedded_length_max
    status, ctype, text = call("POST", payload["url"], body)
    out = {"payload": payload, "problems": problems, "manifest_status": status, "manifest_body": text, "files": []}
    if status == 200:
        manifest = json.loads(text)
        key = jwk.JWK(kty="oct", k=payload["key"])
        for f in manifest["files"]:
            if "embedded" in f:
                compact, how = f["embedded"], "embedded"
            else:
                fs, fctype, compact = call("GET", f["location"])
                how = "location"
                if fs != 200:
                    out["files"].append({"how": how, "status": fs})
                    continue
            token = jwe.JWE()
            token.deserialize(compact, key=key)
            header = token.jose_header
            if header.get("alg") != "dir" or header.get("enc") != "A256GCM":
                problems.append("unexpected JWE algorithms %s" % header)
            if header.get("cty") != f["contentType"]:
                problems.append("cty %s differs from contentType %s" % (header.get("cty"), f["contentType"]))
            out["files"].append({"how": how, "contentType": f["contentType"], "header": header,
                                 "content": json.loads(token.payload.decode())})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
