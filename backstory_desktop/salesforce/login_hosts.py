"""Turn what an admin types as "the org's address" into the OAuth login host.

Admins paste whatever their browser shows: a Lightning Experience page, a
Visualforce page, an Experience Cloud site, or the login host with a path and
query string. ``normalise_login_host`` reduces that text to the ``https://host``
the OAuth web-server flow starts from. It corrects application hosts to the
org's My Domain login host where Salesforce documents the mapping, and rejects
everything else with a one-sentence `LoginHostError` that names what to type.
``check_instance_url`` applies the same host rules, more strictly, to the
``instance_url`` of a token response, because the access token is sent there.

Host formats and their sources (read December 2026):

- ``MyDomainName.my.salesforce.com`` is a production org's My Domain login
  host, and enhanced domains were enforced in Winter '24. Salesforce Help,
  "What Determines Your URL Formats",
  https://help.salesforce.com/s/articleView?id=sf.domain_name_url_formats_what_determines.htm&type=5
- Non-production orgs get partitioned domains, so the login host carries a
  partition word: ``sandbox``, ``develop`` (Developer Edition), ``scratch``,
  ``trailblaze`` (Trailhead Playground), ``demo`` or ``patch``. ``free``,
  ``sfdctest`` and ``sfrestore`` are reserved for Salesforce's internal use.
  Tooling API "OrgDomainLog", field DomainPartition,
  https://developer.salesforce.com/docs/atlas.en-us.256.0.api_tooling.meta/api_tooling/tooling_api_objects_mydomainlog.htm
  Example hosts: ``mycompany-dev-ed.develop.my.salesforce.com`` (Help "My Domain
  Considerations", https://help.salesforce.com/s/articleView?id=xcloud.domain_name_considerations.htm&type=5)
  and ``MyDomainName.patch.my.salesforce.com`` (Help "Partitioned Domains for
  Patch Orgs", https://help.salesforce.com/apex/HTViewHelpDoc?id=xcloud.domain_name_partitioned_domains_patch.htm).
- Sandboxes with enhanced domains use
  ``MyDomainName--SandboxName.sandbox.my.salesforce.com`` (Salesforce's Postman
  collection guide, forcedotcom/postman-salesforce-apis ``install-with-app.md``).
  Salesforce states that "there are currently two possible formats for sandbox
  My Domain login hostname formats" (Second-Generation Managed Packaging guide,
  "Call Salesforce URLs Within a Package",
  https://developer.salesforce.com/docs/platform/pkg2-dev/guide/packaging-instanceless-url.html).
  NOTE: that the second one, without enhanced domains, is
  ``MyDomainName--SandboxName.my.salesforce.com`` was not confirmed in a document.
- Lightning Experience is served from ``MyDomainName.lightning.force.com`` and
  Visualforce pages from ``MyDomainName--PackageName.vf.force.com`` (Apex
  Reference, "DomainCreator Class": ``mycompany.my.salesforce.com`` and
  ``mycompany--uat.vf.force.com`` for the same org,
  https://developer.salesforce.com/docs/atlas.en-us.apexref.meta/apexref/apex_class_System_DomainCreator.htm).
  A sandbox's Lightning host is ``MyDomainName--SandboxName.sandbox.lightning.force.com``
  (Object Reference, "Hostname Redirects Event Type", API 67.0).
- With enhanced domains the My Domain name is also the subdomain of the org's
  Experience Cloud sites, ``MyDomainName.my.site.com`` (Help "My Domain",
  https://help.salesforce.com/apex/HTViewHelpDoc?id=domain_name_overview.htm ;
  Apex Reference "Domain Class", getSitesSubdomainName,
  https://developer.salesforce.com/docs/platform/apex-ref/references/apex-ref/apex-class-system-domain.html).
  Sites without enhanced domains use a separate sites subdomain on
  ``*.force.com``, which does not contain the My Domain name.
- Instance hosts such as ``na123.salesforce.com`` are not recommended for
  logging in, because the instance can change during maintenance, and wrong
  instance hosts are no longer redirected from Spring '26 (Help "My Domain
  Considerations", above).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, urlsplit

LoginHostKind = Literal["production", "sandbox", "my_domain", "local"]

PRODUCTION_LOGIN_HOST = "login.salesforce.com"
SANDBOX_LOGIN_HOST = "test.salesforce.com"
PRACTICE_ORG_HOST = "127.0.0.1"
HTTPS_PORT = 443

MY_DOMAIN_SUFFIX = ".my.salesforce.com"
LIGHTNING_SUFFIX = ".lightning.force.com"
VISUALFORCE_SUFFIX = ".vf.force.com"
EXPERIENCE_CLOUD_SUFFIX = ".my.site.com"
SETUP_SUFFIX = ".my.salesforce-setup.com"

# The partition word in a My Domain login host, with the org type for notes.
# Only the partitions that OrgDomainLog documents for customer orgs.
PARTITION_ORG_TYPES = {
    "sandbox": "sandbox",
    "develop": "Developer Edition org",
    "scratch": "scratch org",
    "trailblaze": "Trailhead Playground",
    "demo": "demo org",
    "patch": "patch org",
}

TYPE_HINT = (
    "type login.salesforce.com, test.salesforce.com or the org's My Domain, "
    "such as mycompany.my.salesforce.com"
)
SHOWN_MAX_CHARS = 80

# One DNS label (RFC 1123), lower case because urlsplit lowers the host name.
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Instance hosts: na123, eu5, cs42, usa77, usa2s ...
_INSTANCE_LABEL = re.compile(r"[a-z]{2,4}[0-9]{1,4}s?")


@dataclass(frozen=True)
class LoginHost:
    """A login host that the OAuth flow may use, with how it was derived."""

    url: str  # "https://host" or, for the practice org, "https://127.0.0.1:PORT"
    kind: LoginHostKind
    partition: str | None = None  # the My Domain partition ("sandbox", "develop", ...)
    corrected_from: str | None = None  # the host the admin typed, when it was corrected
    note: str = ""  # one or two sentences to show beside the address

    @property
    def host(self) -> str:
        """The host name, without scheme or port."""
        return urlsplit(self.url).hostname or ""


class LoginHostError(ValueError):
    """The text is not a usable login host or instance URL.

    The message is one sentence that names the problem and, for a login host,
    what to type instead. It never contains a user name or password from the text.
    """


class _Rejected(Exception):
    """Reason a host was rejected, worded by each public function in its own message."""

    def __init__(self, shown: str, problem: str, fix: str = TYPE_HINT) -> None:
        super().__init__(problem)
        self.shown = shown
        self.problem = problem
        self.fix = fix

    def login_host_message(self) -> str:
        return f"{self.shown} {self.problem}, so {self.fix}."

    def instance_url_message(self) -> str:
        return f"Rejected the instance URL {self.shown} from the token response because it {self.problem}."


def normalise_login_host(text: str, *, allow_local: bool = False) -> LoginHost:
    """Reduce an org address typed or pasted by an admin to its OAuth login host.

    Accepts the generic login hosts, My Domain login hosts and, with
    ``allow_local``, the practice org at ``https://127.0.0.1:PORT``. Corrects
    Lightning Experience, Visualforce and Experience Cloud site hosts to the
    My Domain login host where the format maps to it. Raises `LoginHostError`
    for anything else.
    """
    try:
        parts = _split_url(text, require_scheme=False)
        return _classify(parts, allow_local=allow_local)
    except _Rejected as rejected:
        raise LoginHostError(rejected.login_host_message()) from None


def check_instance_url(url: str, *, allow_local: bool = False) -> str:
    """Validate the ``instance_url`` of a token response and return it as ``https://host``.

    The instance URL must be an ``https://`` My Domain host exactly as
    `normalise_login_host` would return it, with no path, query or fragment, or
    the practice org when ``allow_local`` is set. A generic login host or an
    application host that would need correcting is rejected, because a token
    response that names one is not trustworthy. Raises `LoginHostError`.
    """
    if not url.strip():
        raise LoginHostError("The token response contains an empty instance URL.")
    try:
        parts = _split_url(url, require_scheme=True)
        login_host = _classify(parts, allow_local=allow_local)
        shown = _shown(login_host.corrected_from or login_host.host)
        if login_host.corrected_from is not None:
            raise _Rejected(shown, f"is an application host, not the org's My Domain {login_host.url}")
        if login_host.kind in ("production", "sandbox"):
            raise _Rejected(shown, "is a generic login host, not an org's instance")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise _Rejected(_shown(url.strip()), "has a path, query or fragment after the host")
    except _Rejected as rejected:
        raise LoginHostError(rejected.instance_url_message()) from None
    return login_host.url


def _shown(value: str) -> str:
    if len(value) > SHOWN_MAX_CHARS:
        value = value[: SHOWN_MAX_CHARS - 3] + "..."
    return f"'{value}'"


def _split_url(text: str, *, require_scheme: bool) -> SplitResult:
    """Split the text into URL parts, checking the scheme and the parts before the host."""
    stripped = text.strip()
    if not stripped:
        raise _Rejected("The org address", "is empty")

    if "://" in stripped:
        scheme = stripped.split("://", 1)[0].lower()
        if scheme == "http":
            raise _Rejected(
                _shown(stripped), "uses http:// without TLS", "type it with https:// or without a scheme"
            )
        if scheme != "https":
            raise _Rejected(_shown(stripped), f"uses the {scheme}:// scheme instead of https://")
    elif require_scheme:
        raise _Rejected(_shown(stripped), "has no https:// scheme")
    elif stripped.startswith("//"):
        stripped = "https:" + stripped
    else:
        stripped = "https://" + stripped

    try:
        parts = urlsplit(stripped)
        _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        raise _Rejected(_shown(text.strip()), "is not a valid web address") from None

    if "@" in parts.netloc:
        # Show only the host, because the part before "@" may be a password.
        host_only = parts.netloc.rsplit("@", 1)[1]
        raise _Rejected(
            _shown(host_only),
            "contains a user name or password before the host",
            "type only the host, such as mycompany.my.salesforce.com",
        )
    if not parts.hostname:
        raise _Rejected(_shown(text.strip()), "has no host name")
    return parts


def _classify(parts: SplitResult, *, allow_local: bool) -> LoginHost:
    """Map the host of a split URL to a login host, or raise `_Rejected`."""
    host = (parts.hostname or "").removesuffix(".")
    port = parts.port
    shown = _shown(f"{host}:{port}" if port is not None else host)
    ignored_rest = parts.path not in ("", "/") or bool(parts.query) or bool(parts.fragment)

    if host == PRACTICE_ORG_HOST:
        return _practice_org(shown, port, allow_local=allow_local)
    if _is_ip_address(host):
        raise _Rejected(shown, "is an IP address, not a Salesforce org address")
    if not all(_DNS_LABEL.fullmatch(label) for label in host.split(".")):
        raise _Rejected(shown, "is not a valid host name")

    login_host = _classify_salesforce_host(host, shown)
    if port is not None and port != HTTPS_PORT:
        raise _Rejected(
            shown,
            f"names port {port}, but Salesforce login hosts use the standard HTTPS port",
            f"type it without ':{port}'",
        )
    if ignored_rest:
        note = f"{login_host.note} Ignored the path and query after the host name."
        login_host = LoginHost(
            login_host.url, login_host.kind, login_host.partition, login_host.corrected_from, note
        )
    return login_host


def _practice_org(shown: str, port: int | None, *, allow_local: bool) -> LoginHost:
    if not allow_local:
        raise _Rejected(shown, "is a local address, which only the practice org uses")
    if port is None:
        raise _Rejected(
            shown,
            "has no port",
            "type the practice org's address with its port, such as https://127.0.0.1:8443",
        )
    return LoginHost(
        url=f"https://{PRACTICE_ORG_HOST}:{port}", kind="local", note="Practice org on this computer."
    )


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _classify_salesforce_host(host: str, shown: str) -> LoginHost:
    if host == PRODUCTION_LOGIN_HOST:
        return LoginHost(
            url=f"https://{host}",
            kind="production",
            note="Generic production login host, which works unless the org blocks logins from it.",
        )
    if host == SANDBOX_LOGIN_HOST:
        return LoginHost(
            url=f"https://{host}",
            kind="sandbox",
            note="Generic sandbox login host, which works unless the sandbox blocks logins from it.",
        )
    if host.endswith(MY_DOMAIN_SUFFIX):
        return _my_domain_login_host(host.removesuffix(MY_DOMAIN_SUFFIX), shown)
    if host.endswith(LIGHTNING_SUFFIX):
        # NOTE: the partitioned forms (MyDomainName.develop.lightning.force.com ...)
        # follow the sandbox pattern but were not confirmed in a Salesforce document.
        return _corrected(host, host.removesuffix(LIGHTNING_SUFFIX), "Lightning Experience", shown)
    if host.endswith(VISUALFORCE_SUFFIX):
        return _from_visualforce_host(host, shown)
    if host.endswith(EXPERIENCE_CLOUD_SUFFIX):
        return _from_experience_cloud_host(host, shown)
    if host.endswith(SETUP_SUFFIX):
        return _reject_setup_host(host, shown)
    if host == "force.com" or host.endswith(".force.com"):
        raise _Rejected(
            shown,
            "is a Salesforce Sites, Experience Cloud or content host that does not contain "
            "the org's My Domain name",
            "type the My Domain shown in Setup under My Domain, such as mycompany.my.salesforce.com",
        )
    if host.endswith(".salesforce.com"):
        labels = host.split(".")
        if len(labels) == 3 and _INSTANCE_LABEL.fullmatch(labels[0]):
            raise _Rejected(
                shown,
                "is an instance host, which can change during Salesforce maintenance",
                "type the org's My Domain from Setup under My Domain, such as mycompany.my.salesforce.com",
            )
        raise _Rejected(shown, "is a Salesforce host but not an org login host")
    raise _Rejected(shown, "is not a Salesforce address")


def _my_domain_login_host(prefix: str, shown: str) -> LoginHost:
    """Check the part of a My Domain login host before ``.my.salesforce.com``."""
    labels = prefix.split(".")
    if len(labels) == 1:
        name = labels[0]
        if "--" not in name:
            return LoginHost(
                url=f"https://{name}{MY_DOMAIN_SUFFIX}",
                kind="my_domain",
                note="My Domain login host of a production org.",
            )
        _check_sandbox_name(name, shown)
        return LoginHost(
            url=f"https://{name}{MY_DOMAIN_SUFFIX}",
            kind="my_domain",
            partition="sandbox",
            note="My Domain login host of a sandbox without enhanced domains.",
        )

    if len(labels) != 2 or labels[1] not in PARTITION_ORG_TYPES:
        raise _Rejected(shown, "is not a My Domain login host format that Salesforce documents")
    name, partition = labels
    if partition == "sandbox":
        _check_sandbox_name(name, shown)
    return LoginHost(
        url=f"https://{name}.{partition}{MY_DOMAIN_SUFFIX}",
        kind="my_domain",
        partition=partition,
        note=f"My Domain login host of a {PARTITION_ORG_TYPES[partition]}.",
    )


def _check_sandbox_name(name: str, shown: str) -> None:
    pieces = name.split("--")
    if len(pieces) != 2 or not all(pieces):
        raise _Rejected(
            shown,
            "is missing the sandbox name in MyDomainName--SandboxName form",
            "type it as MyDomainName--SandboxName.sandbox.my.salesforce.com",
        )


def _corrected(host: str, prefix: str, application: str, shown: str) -> LoginHost:
    """Return the My Domain login host for an application host whose prefix is the same."""
    login_host = _my_domain_login_host(prefix, shown)
    note = (
        f"Corrected the {application} address {host} to the org's My Domain login host "
        f"{login_host.host}. {login_host.note}"
    )
    return LoginHost(login_host.url, login_host.kind, login_host.partition, host, note)


def _from_visualforce_host(host: str, shown: str) -> LoginHost:
    # Only the production form MyDomainName--PackageName.vf.force.com is documented
    # together with its login host. Sandbox and partitioned Visualforce hosts have
    # more forms ("ten possible Visualforce hostname formats"), so they are rejected.
    prefix = host.removesuffix(VISUALFORCE_SUFFIX)
    pieces = prefix.split("--")
    if "." not in prefix and len(pieces) == 2 and all(pieces):
        return _corrected(host, pieces[0], "Visualforce page", shown)
    raise _Rejected(
        shown,
        "is a Visualforce page host whose My Domain login host cannot be derived",
        "type the My Domain shown in Setup under My Domain, such as mycompany--uat.sandbox.my.salesforce.com",
    )


def _from_experience_cloud_host(host: str, shown: str) -> LoginHost:
    # NOTE: only MyDomainName.my.site.com (production) is confirmed in the sources
    # above. Sandbox and partitioned site hosts are rejected until a source
    # confirms their format.
    prefix = host.removesuffix(EXPERIENCE_CLOUD_SUFFIX)
    if "." not in prefix and "--" not in prefix:
        return _corrected(host, prefix, "Experience Cloud site", shown)
    raise _Rejected(
        shown,
        "is an Experience Cloud site host whose My Domain login host cannot be derived",
        "type the My Domain shown in Setup under My Domain, such as mycompany--uat.sandbox.my.salesforce.com",
    )


def _reject_setup_host(host: str, shown: str) -> LoginHost:
    # No Salesforce document read for this module states the Setup host format,
    # so the likely login host is offered as a suggestion and not applied.
    prefix = host.removesuffix(SETUP_SUFFIX)
    if "." not in prefix and "--" not in prefix:
        fix = f"type the org's My Domain login host, probably {prefix}{MY_DOMAIN_SUFFIX}"
    else:
        fix = "type the My Domain shown in Setup under My Domain, such as mycompany.my.salesforce.com"
    raise _Rejected(shown, "is a Setup page host, not a login host", fix)
