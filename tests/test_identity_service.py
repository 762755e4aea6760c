"""The identity service's methods on a real state engine, without HTTP: what reaches a caller
as which error."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from cloudbox.errors import NotFound, Unauthorized, Unavailable
from cloudbox.identity.core import AuthContext, TokenPayload
from cloudbox.identity.service import IdentityService
from cloudbox.services import STORES
from cloudbox.settings import Settings
from cloudbox.state.engine import StateEngine


@pytest.fixture
async def identity(tmp_path: Path):
    engine = StateEngine(tmp_path / "state.db", STORES)
    engine.open(create=True)
    service = IdentityService(engine, Settings.resolve({}, environ={}))
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        yield service
        nursery.cancel_scope.cancel()
    engine.close()


def caller(token: str = "caller-token") -> AuthContext:
    """A system reader: may look at anyone's token."""
    payload = TokenPayload(user_id="u1", methods=("password",), scope_type="system", scope_id="all",
                           issued_at=0.0, expires_at=1e12, audit_ids=("a1",))
    return AuthContext(token=token, payload=payload, user={"id": "u1", "name": "u1"},
                       user_domain={"id": "default", "name": "Default"}, role_names=frozenset({"reader"}))


async def test_a_bad_subject_token_is_not_found(identity: IdentityService) -> None:
    # No token key exists yet, so no token is valid: each verb answers 404, naming the token.
    for call in (identity.validate_token(caller(), "garbage"), identity.check_token(caller(), "garbage")):
        with pytest.raises(NotFound, match="subject token is invalid, expired or revoked") as info:
            await call
        assert isinstance(info.value.__cause__, Unauthorized)


async def test_the_callers_own_token_needs_no_lookup(identity: IdentityService) -> None:
    ctx = caller()
    found, catalog = await identity.validate_token(ctx, ctx.token, catalog=False)
    assert found is ctx and catalog is None


@pytest.mark.parametrize("fault", [Unavailable("the state is not readable"), RuntimeError("a bug")])
async def test_a_fault_while_checking_a_subject_token_is_not_hidden_as_404(
        identity: IdentityService, monkeypatch: pytest.MonkeyPatch, fault: Exception) -> None:
    async def failing(token: str) -> AuthContext:
        raise fault

    monkeypatch.setattr(identity, "authenticate", failing)
    for call in (identity.validate_token(caller(), "another"), identity.check_token(caller(), "another"),
                 identity.revoke_subject(caller(), "another")):
        with pytest.raises(type(fault)) as info:
            await call
        assert info.value is fault


def test_identitys_handlers_and_service_hold_no_sql() -> None:
    # Queries live in store.py; handlers parse, call one service method and render.
    root = Path(__file__).resolve().parents[1] / "cloudbox" / "identity"
    for path in sorted([*root.glob("api*.py"), *root.glob("service*.py")]):
        text = path.read_text()
        for marker in (".execute(", "db.query(", "SELECT ", "DELETE FROM", "INSERT INTO", "UPDATE "):
            assert marker not in text, f"{path.name} holds SQL ({marker.strip()!r})"
