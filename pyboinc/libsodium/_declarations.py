"""Raw declarations of the libsodium calls that check Ed25519 signatures, in one place.

`build_binding.py` compiles these strings (pyca/cryptography's layout: INCLUDES, TYPES,
FUNCTIONS, CUSTOMIZATIONS) into the cffi module `_sodium_cffi`; only the typed layer in
`pyboinc.libsodium` touches it. libsodium 1.0.18 (Debian 12's libsodium-dev) is the
reference; these calls have kept their signatures since 1.0.0.

`crypto_sign_verify_detached` is the strict RFC 8032 check: it refuses non-canonical `S`,
small-order keys and small-order `R`, so a signature cannot be made malleable.
"""

INCLUDES = """
#include <sodium.h>
"""

TYPES = ""

FUNCTIONS = """
int sodium_init(void);
int crypto_sign_verify_detached(const unsigned char* sig, const unsigned char* m,
                                unsigned long long mlen, const unsigned char* pk);
"""

CUSTOMIZATIONS = ""
