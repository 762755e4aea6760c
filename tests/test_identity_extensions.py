"""Keystone's other resources over HTTPS: credentials and users' EC2 credentials, policies,
endpoint groups, OAuth1 consumers, domain-specific configuration and project tags; who may
touch each, and bad input changing nothing."""

from __future__ import annotations

import hashlib
import json

from tests.identity_helpers import V, Ident, Team, assert_error, unique

EC2 = "/credentials/OS-EC2"


def test_ec2_credentials_of_a_user(ident: Ident, team: Team) -> None:
    member, pid, uid = team.member_client, team.project["id"], team.member["id"]
    made = member.post(f"{V}/users/{uid}{EC2}", json={"tenant_id": pid})
    assert made.status_code == 201, made.text
    cred = made.json()["credential"]
    assert cred["user_id"] == uid and cred["tenant_id"] == pid and cred["trust_id"] is None
    assert len(cred["access"]) == 32 and len(cred["secret"]) == 32 and cred["access"] != cred["secret"]
    assert cred["links"]["self"].endswith(f"/users/{uid}{EC2}/{cred['access']}")
    second = member.post(f"{V}/users/{uid}{EC2}", json={"tenant_id": pid}).json()["credential"]

    listed = member.get(f"{V}/users/{uid}{EC2}").json()["credentials"]
    assert {c["access"] for c in listed} == {cred["access"], second["access"]}
    assert member.get(f"{V}/users/{uid}{EC2}/{cred['access']}").json()["credential"] == cred
    # The same credential through the credentials API: its id is the access key's hash.
    generic = member.get(f"{V}/credentials/{hashlib.sha256(cred['access'].encode()).hexdigest()}")
    assert generic.status_code == 200 and generic.json()["credential"]["type"] == "ec2"
    assert json.loads(generic.json()["credential"]["blob"])["secret"] == cred["secret"]

    # Another user's credentials are not the member's to see or make; a reader's own project
    # it holds no role on is refused; an unknown project is not found.
    other = team.reader["id"]
    assert_error(member.get(f"{V}/users/{other}{EC2}"), 403)
    assert_error(member.post(f"{V}/users/{other}{EC2}", json={"tenant_id": pid}), 403)
    elsewhere = ident.create("project", name=unique("p"))
    assert_error(member.post(f"{V}/users/{uid}{EC2}", json={"tenant_id": elsewhere["id"]}), 403)
    assert_error(member.post(f"{V}/users/{uid}{EC2}", json={"tenant_id": "nope"}), 404)
    assert_error(member.post(f"{V}/users/{uid}{EC2}", json={}), 400)
    assert len(member.get(f"{V}/users/{uid}{EC2}").json()["credentials"]) == 2

    assert member.delete(f"{V}/users/{uid}{EC2}/{cred['access']}").status_code == 204
    assert_error(member.get(f"{V}/users/{uid}{EC2}/{cred['access']}"), 404)
    assert_error(member.delete(f"{V}/users/{uid}{EC2}/{cred['access']}"), 404)
    # A cloud admin sees anyone's.
    assert [c["access"] for c in ident.admin.get(f"{V}/users/{uid}{EC2}").json()["credentials"]] == [second["access"]]


def test_credentials_api(ident: Ident, team: Team) -> None:
    uid, pid = team.member["id"], team.project["id"]
    blob = json.dumps({"access": unique("a"), "secret": unique("s")})
    r = ident.admin.post(V + "/credentials", json={"credential": {
        "user_id": uid, "project_id": pid, "type": "ec2", "blob": blob}})
    assert r.status_code == 201, r.text
    cred = r.json()["credential"]
    assert cred["id"] == hashlib.sha256(json.loads(blob)["access"].encode()).hexdigest()
    totp = ident.admin.post(V + "/credentials", json={"credential": {
        "user_id": uid, "type": "totp", "blob": "JBSWY3DPEHPK3PXP"}}).json()["credential"]
    assert totp["project_id"] is None and len(totp["id"]) == 32

    # The blob may change (an ec2 one's keys too, and it is still found by its new access key);
    # who owns it and what it is may not.
    new_blob = json.dumps({"access": unique("a2"), "secret": unique("s2")})
    r = ident.admin.patch(f"{V}/credentials/{cred['id']}", json={"credential": {"blob": new_blob}})
    assert r.status_code == 200 and r.json()["credential"]["id"] == cred["id"]
    access = json.loads(new_blob)["access"]
    assert team.member_client.get(f"{V}/users/{uid}{EC2}/{access}").status_code == 200
    for change in ({"type": "cert"}, {"user_id": team.reader["id"]}, {"project_id": None}):
        assert_error(ident.admin.patch(f"{V}/credentials/{cred['id']}", json={"credential": change}), 400)
    bad = ident.admin.post(V + "/credentials", json={"credential": {
        "user_id": uid, "project_id": pid, "type": "ec2", "blob": "not json"}})
    assert_error(bad, 400)
    assert_error(ident.admin.post(V + "/credentials", json={"credential": {"user_id": uid, "type": "x"}}), 400)

    # The member sees its own, filtered; the reader of the same project sees none of them.
    mine = team.member_client.get(V + "/credentials", params={"type": "totp"}).json()["credentials"]
    assert [c["id"] for c in mine] == [totp["id"]]
    assert team.reader_client.get(V + "/credentials").json()["credentials"] == []
    assert_error(team.reader_client.get(f"{V}/credentials/{totp['id']}"), 403)
    assert_error(team.reader_client.post(V + "/credentials", json={"credential": {
        "user_id": uid, "type": "totp", "blob": "x"}}), 403)
    everyone = {c["id"] for c in ident.admin.get(V + "/credentials", params={"user_id": uid}).json()["credentials"]}
    assert {cred["id"], totp["id"]} <= everyone
    assert team.member_client.delete(f"{V}/credentials/{totp['id']}").status_code == 204
    assert_error(ident.admin.get(f"{V}/credentials/{totp['id']}"), 404)

    # A user's credentials go with the user.
    user = ident.user(unique("pw"))
    gone = ident.admin.post(V + "/credentials", json={"credential": {
        "user_id": user["id"], "type": "totp", "blob": "x"}}).json()["credential"]
    assert ident.admin.delete(f"{V}/users/{user['id']}").status_code == 204
    assert_error(ident.admin.get(f"{V}/credentials/{gone['id']}"), 404)


def test_policies_endpoint_groups_and_consumers_are_cloud_admins(ident: Ident, team: Team) -> None:
    policy = ident.admin.post(V + "/policies", json={"policy": {"type": "application/json", "blob": "{}"}})
    assert policy.status_code == 201, policy.text
    pid = policy.json()["policy"]["id"]
    r = ident.admin.patch(f"{V}/policies/{pid}", json={"policy": {"type": "text/plain"}})
    assert r.json()["policy"] == {**policy.json()["policy"], "type": "text/plain"}
    assert pid in {p["id"] for p in ident.admin.get(V + "/policies").json()["policies"]}

    service = ident.create("service", type=unique("t"), name="s")
    endpoint = ident.create("endpoint", service_id=service["id"], interface="internal", url="https://x.example/")
    made = ident.admin.post(V + "/OS-EP-FILTER/endpoint_groups", json={"endpoint_group": {
        "name": "internal of s", "filters": {"service_id": service["id"], "interface": "internal"}}})
    assert made.status_code == 201, made.text
    group = made.json()["endpoint_group"]
    assert group["description"] == "" and group in ident.admin.get(V + "/OS-EP-FILTER/endpoint_groups").json()["endpoint_groups"]
    assert ident.admin.head(f"{V}/OS-EP-FILTER/endpoint_groups/{group['id']}").status_code == 200
    found = ident.admin.get(f"{V}/OS-EP-FILTER/endpoint_groups/{group['id']}/endpoints").json()["endpoints"]
    assert [e["id"] for e in found] == [endpoint["id"]]
    assert_error(ident.admin.post(V + "/OS-EP-FILTER/endpoint_groups", json={"endpoint_group": {
        "name": "bad", "filters": {"url": "x"}}}), 400)
    assert_error(ident.admin.patch(f"{V}/OS-EP-FILTER/endpoint_groups/{group['id']}", json={"endpoint_group": {
        "filters": {"interface": "sideways"}}}), 400)

    consumer = ident.admin.post(V + "/OS-OAUTH1/consumers", json={"consumer": {"description": "app"}})
    assert consumer.status_code == 201 and consumer.json()["consumer"]["secret"]
    cid = consumer.json()["consumer"]["id"]
    shown = ident.admin.get(f"{V}/OS-OAUTH1/consumers/{cid}").json()["consumer"]
    assert shown["description"] == "app" and "secret" not in shown
    assert_error(ident.admin.patch(f"{V}/OS-OAUTH1/consumers/{cid}", json={"consumer": {"secret": "mine"}}), 400)
    assert ident.admin.patch(f"{V}/OS-OAUTH1/consumers/{cid}", json={"consumer": {"description": "b"}}).json()[
        "consumer"]["description"] == "b"

    member = team.member_client
    refused = [
        member.post(V + "/policies", json={"policy": {"type": "t", "blob": "b"}}),
        member.get(V + "/policies"), member.get(f"{V}/policies/{pid}"), member.delete(f"{V}/policies/{pid}"),
        member.get(V + "/OS-EP-FILTER/endpoint_groups"),
        member.delete(f"{V}/OS-EP-FILTER/endpoint_groups/{group['id']}"),
        member.post(V + "/OS-OAUTH1/consumers", json={"consumer": {}}), member.get(V + "/OS-OAUTH1/consumers"),
    ]
    for r in refused:
        assert_error(r, 403)
    for path in (f"/policies/{pid}", f"/OS-EP-FILTER/endpoint_groups/{group['id']}", f"/OS-OAUTH1/consumers/{cid}"):
        assert ident.admin.delete(V + path).status_code == 204
        assert_error(ident.admin.get(V + path), 404)


def test_domain_configuration(ident: Ident, team: Team) -> None:
    default = ident.admin.get(V + "/domains/config/default").json()["config"]
    assert default["identity"]["driver"] == "sql" and "url" in default["ldap"] and "password" not in default["ldap"]
    assert ident.admin.get(V + "/domains/config/ldap/user_tree_dn/default").json() == {"config": {"user_tree_dn": None}}
    assert_error(ident.admin.get(V + "/domains/config/nova/default"), 403)

    domain = ident.create("domain", name=unique("d"))
    path = f"{V}/domains/{domain['id']}/config"
    assert_error(ident.admin.get(path), 404)
    config = {"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://a/", "password": "hidden"}}
    r = ident.admin.put(path, json={"config": config})
    assert r.status_code == 201 and r.json()["config"] == {"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://a/"}}
    assert ident.admin.put(path, json={"config": config}).status_code == 200  # replaced
    assert ident.admin.get(path + "/ldap/url").json() == {"config": {"url": "ldap://a/"}}
    assert_error(ident.admin.get(path + "/ldap/password"), 404)  # stored, never shown

    r = ident.admin.patch(path + "/identity", json={"config": {"identity": {"list_limit": 5}}})
    assert r.status_code == 200 and r.json()["config"] == {"identity": {"driver": "ldap", "list_limit": 5}}
    r = ident.admin.patch(path + "/ldap/url", json={"config": {"url": "ldap://b/"}})
    assert r.json()["config"]["ldap"]["url"] == "ldap://b/"
    # Options a domain may not set, and bodies that name another group or option, change nothing.
    for method, sub, body, status in (
        ("PATCH", "", {"config": {"nova": {"x": 1}}}, 403),
        ("PATCH", "", {"config": {"ldap": {"no_such": 1}}}, 403),
        ("PATCH", "/identity", {"config": {"ldap": {"url": "x"}}}, 400),
        ("PATCH", "/ldap/url", {"config": {"user": "x"}}, 400),
        ("PUT", "", {"config": {"ldap": {"url": {"nested": 1}}}}, 400),
        ("PUT", "", {"config": {}}, 400),
    ):
        assert_error(ident.admin.request(method, path + sub, json=body), status)
    assert ident.admin.get(path).json()["config"] == {
        "identity": {"driver": "ldap", "list_limit": 5}, "ldap": {"url": "ldap://b/"}}
    assert_error(team.member_client.get(path), 403)
    assert_error(team.member_client.put(path, json={"config": config}), 403)

    assert ident.admin.delete(path + "/identity/driver").status_code == 204
    assert_error(ident.admin.get(path + "/identity/driver"), 404)
    assert ident.admin.delete(path + "/identity").status_code == 204
    assert_error(ident.admin.get(path + "/identity"), 404)
    assert_error(ident.admin.delete(path + "/identity"), 404)
    assert ident.admin.delete(path).status_code == 204
    assert_error(ident.admin.get(path), 404)
    assert_error(ident.admin.put(f"{V}/domains/no-such/config", json={"config": config}), 404)
    # A domain's configuration goes with it.
    assert ident.admin.put(path, json={"config": config}).status_code == 201
    ident.admin.patch(f"{V}/domains/{domain['id']}", json={"domain": {"enabled": False}})
    assert ident.admin.delete(f"{V}/domains/{domain['id']}").status_code == 204
    assert_error(ident.admin.get(path), 404)


def test_project_tags(ident: Ident, team: Team) -> None:
    project = ident.create("project", name=unique("p"), tags=["a"])
    tags = f"{V}/projects/{project['id']}/tags"
    assert ident.admin.put(tags + "/b").status_code == 201
    assert ident.admin.put(tags + "/b").status_code == 201  # already there: still one
    assert ident.admin.get(tags).json() == {"tags": ["a", "b"]}
    assert ident.admin.head(tags + "/b").status_code == 204
    assert ident.admin.get(tags + "/b").status_code == 204
    assert_error(ident.admin.get(tags + "/c"), 404)
    assert ident.admin.put(tags, json={"tags": ["x", "y", "x"]}).json() == {"tags": ["x", "y"]}
    assert ident.admin.get(f"{V}/projects/{project['id']}").json()["project"]["tags"] == ["x", "y"]
    assert ident.admin.delete(tags + "/x").status_code == 204
    assert_error(ident.admin.delete(tags + "/x"), 404)
    assert_error(ident.admin.put(tags, json={"tags": ["a,b"]}), 400)
    assert_error(ident.admin.put(tags, json={"tags": [str(i) for i in range(81)]}), 400)
    assert ident.admin.put(tags, json={"tags": [str(i) for i in range(80)]}).status_code == 200
    assert_error(ident.admin.put(tags + "/one-too-many"), 400)
    assert len(ident.admin.get(tags).json()["tags"]) == 80
    assert ident.admin.delete(tags).status_code == 204
    assert ident.admin.get(tags).json() == {"tags": []}
    # A project's readers read its tags; its members do not change them; its managers do.
    team_tags = f"{V}/projects/{team.project['id']}/tags"
    assert team.reader_client.get(team_tags).status_code == 200
    assert_error(team.member_client.put(team_tags + "/mine"), 403)
    assert_error(team.member_client.get(tags), 403)
