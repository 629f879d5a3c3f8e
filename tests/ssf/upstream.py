"""An upstream SSF transmitter for Tenet's tests, signing with PyJWT.

    upstream.py JWKS_OUT < claims.jsonl > tokens.txt

Makes a 2048-bit RSA key, writes its JWKS to JWKS_OUT, then signs each
line of claims from stdin as a SET (RS256, typ secevent+jwt, kid idp-1)
and prints one compact token per line. A claims line with "_key": "other"
is signed with a second key that is not in the JWKS.
"""

import json
import sys

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
jwk.update({"kid": "idp-1", "use": "sig", "alg": "RS256"})
with open(sys.argv[1], "w") as f:
    json.dump({"keys": [jwk]}, f)
for line in sys.stdin:
    claims = json.loads(line)
    signer = other if claims.pop("_key", None) == "other" else key
    print(jwt.encode(claims, signer, algorithm="RS256", headers={"typ": "secevent+jwt", "kid": "idp-1"}), flush=True)
