"""AuthorizationPolicy -> envoy.filters.http.rbac, built as istiod builds it.

Mirrors pilot/pkg/security/authz (builder.go, model/model.go, model/generator.go, matcher/) at
the pinned istio commit, shape for shape, so tests/conformance can compare the filters with
istiod's whole: one filter per action present (AUDIT, DENY, ALLOW, in that order), a policy
per rule named `ns[NS]-policy[NAME]-rule[I]`, each permission and principal an AND of the
rule's fields in istiod's order, each field an OR of its values. Policies annotated
`istio.io/dry-run: "true"` go to shadow rules: evaluated and counted, never enforced.
"""

from __future__ import annotations

from collections.abc import Callable

from mesh.control.topology import Proxy
from mesh.envoy.common import JWT_FILTER, JWT_PAYLOAD_KEY, T_RBAC, Config, typed
from mesh.envoy.security import selects
from mesh.istio.loader import MeshConfig
from mesh.istio.models import AuthorizationPolicy, Condition, Operation, Rule, Source

SPIFFE = "spiffe://"
T_URI_TEMPLATE = (
    "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig"
)
# Envoy's RBAC actions for Istio's (AUDIT is Envoy's LOG: marks the request, decides nothing).
ENVOY_ACTION = {"AUDIT": "LOG", "DENY": "DENY", "ALLOW": "ALLOW"}
NEVER_MATCHES = {"permissions": [{"not_rule": {"any": True}}],
                 "principals": [{"not_id": {"any": True}}]}  # fmt: skip
_GO_QUOTE = set("\\.+*?()|[]{}^$")


def go_quote_meta(value: str) -> str:
    """Go's regexp.QuoteMeta (Python's re.escape escapes more characters)."""
    return "".join(f"\\{c}" if c in _GO_QUOTE else c for c in value)


# --- matcher/: string and header matchers -------------------------------------------------


def _regex(regex: str) -> Config:
    return {"safe_regex": {"regex": regex}}


def string_matcher(value: str, prefix: str = "") -> Config:
    """StringMatcherWithPrefix: `*`, `*suffix`, `prefix*` and exact."""
    if value == "*":
        return _regex(".+")
    if value.startswith("*"):
        if not prefix:
            return {"suffix": value[1:]}
        return _regex(prefix + ".*" + go_quote_meta(value[1:]))
    if value.endswith("*"):
        return {"prefix": prefix + value[:-1]}
    return {"exact": prefix + value}


def header_matcher(name: str, value: str) -> Config:
    if value == "*":
        return {"name": name, "present_match": True}
    if value.startswith("*"):
        return {"name": name, "string_match": {"suffix": value[1:]}}
    if value.endswith("*"):
        return {"name": name, "string_match": {"prefix": value[:-1]}}
    return {"name": name, "string_match": {"exact": value}}


def _claim(claim: str, match: Config) -> Config:
    """MetadataStringMatcherForJWTClaim."""
    return {
        "metadata": {
            "filter": JWT_FILTER,
            "path": [{"key": JWT_PAYLOAD_KEY}, {"key": claim}],
            "value": {"string_match": match},
        }
    }


def _claims_one_of(claims: list[str], values: list[str]) -> Config:
    """MetadataListValueMatcherForJWTClaims: a claim equal to, or a list containing, a value."""
    matchers = [{"string_match": string_matcher(v)} for v in values]
    value = matchers[0] if len(matchers) == 1 else {"or_match": {"value_matchers": matchers}}
    return {
        "metadata": {
            "filter": JWT_FILTER,
            "path": [{"key": k} for k in (JWT_PAYLOAD_KEY, *claims)],
            "value": {"or_match": {"value_matchers": [{"list_match": {"one_of": value}}, value]}},
        }
    }


# --- model/generator.go: one field's values ----------------------------------------------


def _or_ids(ids: list[Config]) -> Config:
    return {"or_ids": {"ids": ids}}


def _or_rules(rules: list[Config]) -> Config:
    return {"or_rules": {"rules": rules}}


def _principal(value: str) -> Config:
    return {"authenticated": {"principal_name": string_matcher(value, SPIFFE)}}


def _namespace(value: str) -> Config:
    pattern = ".*".join(go_quote_meta(part) for part in value.split("*"))
    return {"authenticated": {"principal_name": _regex(f".*/ns/{pattern}/.*")}}


_ANY = ".+"


def _request_principal(value: str) -> Config:
    """requestPrincipalGenerator: `iss/sub` split at the last '/', each side matched."""
    issuer, slash, subject = value.rpartition("/")
    found = bool(slash)
    if not found:
        issuer, subject = value, ""
    if value == "*":
        iss, sub = _regex(_ANY), _regex(_ANY)
    elif value.startswith("*"):
        if found:
            iss = _regex(_ANY) if issuer == "*" else {"suffix": issuer[1:]}
            sub = {"exact": subject}
        else:
            iss, sub = _regex(_ANY), {"suffix": value[1:]}
    elif value.endswith("*"):
        if found:
            iss = {"exact": issuer}
            sub = _regex(_ANY) if subject == "*" else {"prefix": subject[:-1]}
        else:
            iss, sub = {"prefix": value[:-1]}, _regex(_ANY)
    else:
        iss, sub = {"exact": issuer}, {"exact": subject}
    return {"and_ids": {"ids": [_claim("iss", iss), _claim("sub", sub)]}}


def _request_principals(values: list[str]) -> Config:
    ids = [_request_principal(v) for v in values]
    return ids[0] if len(ids) == 1 else _or_ids(ids)


def _path(value: str) -> Config:
    if "{*}" in value or "{**}" in value:
        template = value.replace("{**}", "**").replace("{*}", "*")
        config = typed(T_URI_TEMPLATE, path_template=template)
        return {"uri_template": {"name": "uri-template", "typed_config": config}}
    return {"url_path": {"path": string_matcher(value)}}


def _method(value: str) -> Config:
    return {"header": header_matcher(":method", value)}


def _bracketed(text: str) -> list[str]:
    return text.strip("[]").split("][")


def _condition(condition: Condition) -> list[Config]:
    """A `when` condition: values ORed, notValues negated (model.go rule.principal)."""
    if condition.key.startswith("request.headers["):
        name = _bracketed(condition.key.removeprefix("request.headers"))[0]

        def header(value: str) -> Config:
            return {"header": header_matcher(name, value)}

        return _principal_field(header, condition.values, condition.notValues)
    out: list[Config] = []
    claims = _bracketed(condition.key.removeprefix("request.auth.claims"))
    if condition.values:
        out.append(_claims_one_of(claims, condition.values))
    if condition.notValues:
        out.append({"not_id": _claims_one_of(claims, condition.notValues)})
    return out


def _principal_field(
    generate: Callable[[str], Config], values: list[str], not_values: list[str]
) -> list[Config]:
    """A plain source field: OR of its values, and NOT(OR) of its negated values."""
    out = [_or_ids([generate(v) for v in values])] if values else []
    if not_values:
        out.append({"not_id": _or_ids([generate(v) for v in not_values])})
    return out


def _permission_field(
    generate: Callable[[str], Config], values: list[str], not_values: list[str]
) -> list[Config]:
    out = [_or_rules([generate(v) for v in values])] if values else []
    if not_values:
        out.append({"not_rule": _or_rules([generate(v) for v in not_values])})
    return out


# --- model/model.go: one rule ------------------------------------------------------------


def _source(source: Source, conditions: list[Config]) -> Config:
    """Fields in istiod's order (each insertFront'ed): principals, requestPrincipals, ...,
    namespaces; then the rule's `when` conditions."""
    ids = _principal_field(_principal, source.principals, source.notPrincipals)
    if source.requestPrincipals:
        ids.append(_request_principals(source.requestPrincipals))
    if source.notRequestPrincipals:
        ids.append({"not_id": _request_principals(source.notRequestPrincipals)})
    ids += _principal_field(_namespace, source.namespaces, source.notNamespaces)
    return {"and_ids": {"ids": [*ids, *conditions] or [{"any": True}]}}


def _operation(op: Operation | None) -> Config:
    rules: list[Config] = []
    if op is not None:
        rules += _permission_field(_method, op.methods, op.notMethods)
        rules += _permission_field(_path, op.paths, op.notPaths)
    return {"and_rules": {"rules": rules or [{"any": True}]}}


def _policy(rule: Rule) -> Config:
    conditions = [c for condition in rule.when for c in _condition(condition)]
    sources = [f.source for f in rule.from_]
    principals = [_source(s, conditions) for s in sources] or [
        {"and_ids": {"ids": conditions or [{"any": True}]}}
    ]
    permissions = [_operation(t.operation) for t in rule.to] or [_operation(None)]
    return {"permissions": permissions, "principals": principals}


# --- builder.go: the filters -------------------------------------------------------------


def _rules(policies: list[AuthorizationPolicy], action: str) -> Config | None:
    if not policies:
        return None
    named: dict[str, Config] = {}
    for policy in policies:
        prefix = f"ns[{policy.metadata.namespace}]-policy[{policy.metadata.name}]"
        if policy.spec.rules is None or not policy.spec.rules:
            named[f"{prefix}-rule[0]"] = NEVER_MATCHES  # an ALLOW with no rules allows nothing
        for index, rule in enumerate(policy.spec.rules or []):
            named[f"{prefix}-rule[{index}]"] = _policy(rule)
    rules: Config = {"policies": named}
    if action != "ALLOW":  # ALLOW is the proto default, which istiod's JSON leaves out
        rules["action"] = action
    return rules


def _selected(
    config: MeshConfig, proxy: Proxy, root_namespace: str, action: str
) -> list[AuthorizationPolicy]:
    found = [
        p
        for p in config.authorization_policies
        if p.spec.action == action
        and selects(
            p.spec.selector.matchLabels if p.spec.selector else None,
            p.metadata.namespace,
            proxy,
            root_namespace,
        )
    ]
    return sorted(found, key=lambda p: (p.metadata.namespace, p.metadata.name))


def rbac_filters(config: MeshConfig, proxy: Proxy, root_namespace: str) -> list[Config]:
    """One RBAC filter per action that has a policy selecting this proxy: AUDIT, DENY, ALLOW."""
    filters = []
    for action in ("AUDIT", "DENY", "ALLOW"):
        policies = _selected(config, proxy, root_namespace, action)
        if not policies:
            continue
        envoy_action = ENVOY_ACTION[action]
        enforced = _rules([p for p in policies if not p.dry_run], envoy_action)
        shadow = _rules([p for p in policies if p.dry_run], envoy_action)
        rbac: Config = {}
        if enforced is not None:
            rbac["rules"] = enforced
        if shadow is not None:
            rbac["shadow_rules"] = shadow
        # istiod sets the prefix from the shadow rules' action; with none, the proto default
        # (ALLOW) names it. Stats only.
        shadow_action = shadow.get("action", "ALLOW") if shadow else "ALLOW"
        if shadow_action in ("ALLOW", "DENY"):
            rbac["shadow_rules_stat_prefix"] = f"istio_dry_run_{shadow_action.lower()}_"
        filters.append(
            {
                "name": f"envoy.filters.http.rbac.{action.lower()}",
                "typed_config": typed(T_RBAC, **rbac),
            }
        )
    return filters
