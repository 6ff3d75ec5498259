"""A standalone SMART App Launch driven by the real SMART client library (PyPI
`fhirclient` 4.4): the library discovers the OAuth endpoints from the CapabilityStatement,
builds the authorization URL (with PKCE), exchanges the code, reads the Patient, searches
Observations and refreshes its token. This script plays the person in the browser: it signs
in, picks the record and approves the consent page, over plain HTTP with a cookie jar.

Usage: launch_fhirclient.py FHIR_BASE CLIENT_ID REDIRECT_URI USERNAME PASSWORD
Prints one line per check and `N passed, M failed`; exits non-zero on any failure.
"""
import html
import re
import sys
import urllib.parse

import requests
from fhirclient import client
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient

base, client_id, redirect_uri, username, password = sys.argv[1:6]
origin = base.rsplit("/fhir", 1)[0]
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + name + (f" — {detail}" if detail and not ok else ""))
    return ok


def csrf(page_html):
    m = re.search(r'name="csrf" value="([^"]+)"', page_html)
    if not m:
        raise SystemExit("no CSRF token on the page:\n" + page_html[:2000])
    return html.unescape(m.group(1))


settings = {
    "app_id": client_id,
    "api_base": base,
    "redirect_uri": redirect_uri,
    "scope": "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs",
}
smart = client.FHIRClient(settings=settings)
smart.prepare()
authorize_url = smart.authorize_url
check("the library found the authorize endpoint in the CapabilityStatement", authorize_url.startswith(origin + "/authorize"), authorize_url)
check("the library sent PKCE S256", "code_challenge_method=S256" in authorize_url)

browser = requests.Session()
page = browser.get(authorize_url)
check("an unsigned-in person is sent to the sign-in page", page.url.startswith(origin + "/login"), page.url)
page = browser.post(origin + "/login", data={"csrf": csrf(page.text), "username": username, "password": password})
check("signing in leads to the record picker", page.url.startswith(origin + "/authorize/pick"), page.url)
link = html.unescape(re.search(r'name="link_id" value="([^"]+)"', page.text).group(1))
page = browser.post(origin + "/authorize/pick", data={"csrf": csrf(page.text), "link_id": link})
check("picking a record leads to the consent page", page.url.startswith(origin + "/authorize/consent"), page.url)
scopes = [html.unescape(s) for s in re.findall(r'name="scope" value="([^"]+)"', page.text)]
check("the consent page lists what the app asked for", "patient/Observation.rs" in scopes and "offline_access" in scopes, str(scopes))
answer = browser.post(
    origin + "/authorize/consent",
    data=[("csrf", csrf(page.text)), ("decision", "allow")] + [("scope", s) for s in scopes],
    allow_redirects=False,
)
location = answer.headers.get("Location", "")
check("approving returns to the app with a code", answer.status_code == 303 and location.startswith(redirect_uri) and "code=" in location, location)

smart.handle_callback(location)
check("the library exchanged the code for a token", smart.server.auth.access_token is not None)
pid = smart.patient_id
check("the token response names the patient", bool(pid))

patient = Patient.read(pid, smart.server)
check("the library reads the Patient", patient.id == pid)
observations = Observation.where(struct={"patient": pid, "_count": "5"}).perform_resources(smart.server)
check("the library searches Observations", len(observations) > 0, str(len(observations)))

old = smart.server.auth.access_token
smart.server.reauthorize()
check("the library refreshed its token", smart.server.auth.access_token not in (None, old))
patient = Patient.read(pid, smart.server)
check("the refreshed token works", patient.id == pid)

passed = sum(1 for r in results if r)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
