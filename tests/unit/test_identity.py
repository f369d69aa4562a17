from __future__ import annotations

from aiohttp.test_utils import make_mocked_request

from services.common.identity import caller_identity


def test_uri_of_the_nearest_element() -> None:
    xfcc = (
        "By=spiffe://cluster.local/ns/a/sa/x;Hash=ab;URI=spiffe://cluster.local/ns/a/sa/first,"
        "By=spiffe://cluster.local/ns/meshmart/sa/order-service;Hash=cd;"
        "URI=spiffe://cluster.local/ns/meshmart/sa/user-service"
    )
    request = make_mocked_request("GET", "/", headers={"x-forwarded-client-cert": xfcc})
    assert caller_identity(request) == "spiffe://cluster.local/ns/meshmart/sa/user-service"


def test_no_header_no_identity() -> None:
    assert caller_identity(make_mocked_request("GET", "/")) is None
    bare = make_mocked_request("GET", "/", headers={"x-forwarded-client-cert": "Hash=ab"})
    assert caller_identity(bare) is None
