"""A sign-up handler that trusts smscode's token, checked against the JWKS, not the browser.

Run: SMSCODE_URL=http://127.0.0.1:8080 TOKEN_AUDIENCE=example-shop flask --app app.py run
"""

import os

import jwt
import redis
from flask import Flask, request

SMSCODE = os.environ.get("SMSCODE_URL", "http://127.0.0.1:8080")
ISSUER = os.environ.get("TOKEN_ISSUER", "smscode")
AUDIENCE = os.environ["TOKEN_AUDIENCE"]  # this app's name, as smscode's TOKEN_AUDIENCE says
# The key set is cached for 5 min, and fetched again when a token names a kid it lacks.
keys = jwt.PyJWKClient(f"{SMSCODE}/.well-known/jwks.json", lifespan=300)
seen = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
app = Flask(__name__)


@app.post("/signup")
def signup() -> tuple[dict[str, object], int]:
    token = request.form.get("phone_token", "")
    try:
        claims = jwt.decode(
            token,
            keys.get_signing_key_from_jwt(token).key,
            algorithms=["EdDSA"],  # never the token's own word for it
            issuer=ISSUER,
            audience=AUDIENCE,
            options={"require": ["iss", "aud", "exp", "iat", "jti", "sub", "purpose"]},
        )
    except jwt.PyJWTError as error:
        return {"ok": False, "error": type(error).__name__}, 401
    if claims["purpose"] != "signup" or claims.get("phone_number_verified") is not True:
        return {"ok": False, "error": "wrong purpose"}, 401
    # One use per token: remember its jti until it would have expired anyway.
    if not seen.set(f"used-token:{claims['jti']}", 1, nx=True, exat=int(claims["exp"])):
        return {"ok": False, "error": "replayed"}, 401
    return {"ok": True, "phone": claims["phone_number"]}, 201
