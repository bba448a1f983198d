"""Accounts: the caller's own (who am I, password, API keys) and, for admins, everyone's (create, reset a
password, grant or revoke admin, delete). The ownership rules live in `db/accounts.py`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from photosearch.api.auth import MIN_NEW_PASSWORD, hash_password, verify_password
from photosearch.api.deps import AdminUser, Ctx, CurrentUser
from photosearch.api.errors import ApiError
from photosearch.api.routes.auth import set_session_cookie
from photosearch.api.schemas import RequestModel, UserOut
from photosearch.db.accounts import (
    create_account,
    create_api_key,
    delete_user,
    get_user,
    list_api_keys,
    list_users,
    revoke_api_key,
    set_admin,
    set_password_hash,
)
from photosearch.db.libraries import list_libraries

router = APIRouter(tags=["users"])

_Password = Field(min_length=MIN_NEW_PASSWORD, max_length=1024, description=f"At least {MIN_NEW_PASSWORD} characters")


@router.get("/api/users/me", response_model=UserOut)
def me(user: CurrentUser, ctx: Ctx) -> dict:
    libs = list_libraries(ctx.db, user["id"])
    return {**user, "libraries": len(libs), "assets": sum(int(lib["assets"]) for lib in libs)}


class PasswordChange(RequestModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = _Password


class PasswordChanged(BaseModel):
    csrf_token: str | None = Field(description="The new session's CSRF token (cookie callers get a new session)")


@router.put("/api/users/me/password", response_model=PasswordChanged)
def change_password(body: PasswordChange, user: CurrentUser, ctx: Ctx, request: Request, response: Response) -> dict:
    """Change your own password (the current one is required). Every session ends; a browser making the
    change gets a new one at once, so only the other devices are logged out."""
    stored = get_user(ctx.db, user["id"])["password_hash"]
    if not verify_password(body.current_password, stored):
        raise ApiError(403, "current_password: wrong password")
    set_password_hash(ctx.db, user["id"], hash_password(body.new_password))
    if user["auth"] != "session":
        return {"csrf_token": None}
    return {"csrf_token": set_session_cookie(request, response, ctx, user)["csrf_token"]}


class ApiKeyOut(BaseModel):
    id: UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class ApiKeyCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100)


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="Shown once: send it in the x-api-key header")


@router.get("/api/users/me/api-keys", response_model=list[ApiKeyOut])
def my_keys(user: CurrentUser, ctx: Ctx) -> list[dict]:
    return list_api_keys(ctx.db, user["id"])


@router.post("/api/users/me/api-keys", response_model=ApiKeyCreated, status_code=201)
def new_key(body: ApiKeyCreate, user: CurrentUser, ctx: Ctx) -> dict:
    key, secret = create_api_key(ctx.db, user["id"], body.name.strip())
    return {**key, "secret": secret}


@router.delete("/api/users/me/api-keys/{key_id}", status_code=204)
def drop_key(key_id: UUID, user: CurrentUser, ctx: Ctx) -> Response:
    revoke_api_key(ctx.db, user["id"], str(key_id))
    return Response(status_code=204)


# ---- admins ------------------------------------------------------------------------------------


class UserCreate(RequestModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    password: str = _Password
    is_admin: bool = False


class UserUpdate(RequestModel):
    model_config = ConfigDict(extra="forbid")

    is_admin: bool


class PasswordReset(RequestModel):
    model_config = ConfigDict(extra="forbid")

    password: str = _Password


@router.get("/api/users", response_model=list[UserOut])
def users(admin: AdminUser, ctx: Ctx) -> list[dict]:
    return list_users(ctx.db)


@router.post("/api/users", response_model=UserOut, status_code=201)
def add_user(body: UserCreate, admin: AdminUser, ctx: Ctx) -> dict:
    """Create an account with a password (a 409 if the email is taken)."""
    return create_account(
        ctx.db, body.email, name=body.name, is_admin=body.is_admin, password_hash=hash_password(body.password)
    )


@router.put("/api/users/{user_id}", response_model=UserOut)
def update_user(user_id: UUID, body: UserUpdate, admin: AdminUser, ctx: Ctx) -> dict:
    """Grant or revoke admin (the last admin cannot be demoted: a 409)."""
    return set_admin(ctx.db, user_id, body.is_admin)


@router.put("/api/users/{user_id}/password", status_code=204)
def reset_password(user_id: UUID, body: PasswordReset, admin: AdminUser, ctx: Ctx) -> Response:
    """Set someone's password; their sessions end."""
    target = get_user(ctx.db, user_id)
    set_password_hash(ctx.db, target["id"], hash_password(body.password))
    return Response(status_code=204)


@router.delete("/api/users/{user_id}")
def remove_user(user_id: UUID, admin: AdminUser, ctx: Ctx) -> dict:
    """Delete an account with its libraries' index entries (files on disk stay). Not yourself, not the
    last admin."""
    if str(user_id) == str(admin["id"]):
        raise ApiError(409, "you cannot delete your own account here; ask another admin")
    return delete_user(ctx.db, user_id)
