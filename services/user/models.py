from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import EmailStr, Field

from services.common.models import ApiModel


class SignupRequest(ApiModel):
    email: EmailStr = Field(max_length=254)
    name: str = Field(min_length=2, max_length=100)
    pwd: str = Field(min_length=8, max_length=128)


class LoginRequest(ApiModel):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=128)


class User(ApiModel):
    email: str
    name: str
    user_id: str


class LoginResponse(ApiModel):
    token: str
    user_id: str
    expires_at: datetime


class UserDetail(User):
    # Orders as order-service returned them; empty with ordersAvailable=false when it could
    # not answer in time (the seed's Resilience4j fallback, done without retry or breaker).
    orders: list[dict[str, Any]]
    orders_available: bool


class Welcome(ApiModel):
    message: str


class Jwks(ApiModel):
    keys: list[dict[str, str]]
