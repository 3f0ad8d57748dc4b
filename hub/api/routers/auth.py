"""Login (OAuth2 password flow), logout, and the caller's own account: ``/auth/*`` and ``/me``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from hub.api.errors import ApiError, not_authenticated
from hub.api.security import ApiDep, AuditDep, BearerToken, CurrentUser
from hub.api.settings import MAX_PASSWORD_LENGTH
from hub.audit import Outcome

router = APIRouter(tags=["auth"])

LoginForm = Annotated[OAuth2PasswordRequestForm, Depends()]


class TokenResponse(BaseModel):
    """RFC 6749 section 5.1."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the token type of RFC 6750, not a secret)
    expires_in: int


class PasswordChange(BaseModel):
    """The caller's current password and the new one."""

    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH)


def _invalid_credentials() -> ApiError:
    # One message for unknown user, wrong password and disabled account: the answer reveals nothing.
    return not_authenticated("incorrect username or password", code="invalid_credentials")


@router.post("/auth/token", summary="Log in: exchange username and password for an access token")
async def login(form: LoginForm, api: ApiDep, request: Request) -> TokenResponse:
    """OAuth2 password flow; failures are rate-limited per user and per address, and audited."""
    username, ip = form.username.strip().lower()[:64], api.client_ip(request)
    wait = api.limiter.retry_after(username, ip)
    if wait is not None:
        await api.audit.record(
            "auth.login_failed", actor=username, target=username, outcome=Outcome.FAILED, source=ip,
            detail={"reason": "rate_limited"},
        )  # fmt: skip
        raise ApiError(429, "rate_limited", "too many failed logins; try again later", {"Retry-After": f"{wait:.0f}"})
    user = None
    if len(form.password) <= MAX_PASSWORD_LENGTH:
        user = await api.users.authenticate(username, form.password)
    if user is None:
        api.limiter.failed(username, ip)
        await api.audit.record(
            "auth.login_failed", actor=username, target=username, outcome=Outcome.FAILED, source=ip,
            detail={"reason": "invalid_credentials"},
        )  # fmt: skip
        raise _invalid_credentials()
    api.limiter.succeeded(username)
    ttl = api.settings.token_ttl_s
    token = await api.users.issue_token(user.username, ttl)
    await api.audit.record("auth.login", actor=user.username, target=user.username, source=ip)
    return TokenResponse(access_token=token.value, expires_in=ttl)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke the token of this request")
async def logout(principal: CurrentUser, token: BearerToken, api: ApiDep, audit: AuditDep) -> None:
    """The token stops working at once."""
    assert token is not None  # CurrentUser refused the request otherwise
    await api.users.revoke_token(token)
    await audit("auth.logout", target=principal.username)


@router.get("/me", summary="Who the caller is, what they may do, and on which devices")
async def me(principal: CurrentUser) -> dict[str, Any]:
    """The caller's account, permissions and scope."""
    return {
        "username": principal.username,
        "role": principal.role.value,
        "team": principal.team,
        "permissions": sorted(p.value for p in principal.permissions),
        "scope": principal.scope.describe(),
    }


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT, summary="Change the caller's password")
async def change_password(body: PasswordChange, principal: CurrentUser, api: ApiDep, audit: AuditDep) -> None:
    """Every token of the caller is revoked, this one included: log in again with the new password."""
    # A stolen token must not become a way to guess the password it was issued for: same limits as login.
    if api.limiter.retry_after(principal.username, audit.source) is not None:
        raise ApiError(429, "rate_limited", "too many failed attempts; try again later")
    if not await api.users.verify_password(principal.username, body.current_password):
        api.limiter.failed(principal.username, audit.source)
        await audit("user.password_change_failed", target=principal.username, outcome=Outcome.FAILED)
        raise ApiError(400, "invalid_credentials", "the current password is incorrect")
    problem = api.password_problem(body.new_password, principal.username)
    if problem:
        raise ApiError(422, "weak_password", f"the new password {problem}")
    await api.users.set_password(principal.username, body.new_password)
    await audit("user.password_changed", target=principal.username)
