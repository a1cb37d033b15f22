"""Raw declarations of the OpenSSL libcrypto calls that check Ed25519 signatures.

Compiled into the same cffi module as BOINC's API (`_declarations.sections` joins them):
the frozen worker already bundles libcrypto for `ssl` and `hashlib`, so checking signed
task scripts costs it no new library, where cryptography's wheel would add several MB.
Ed25519 signs the message itself (no separate digest), so the one-shot
`EVP_DigestVerify` is the call, after `EVP_DigestVerifyInit` with no digest. OpenSSL 3.0
(Debian 12's libssl-dev) is the reference; 1.1.1 has the same calls.
"""

INCLUDES = """
#include <openssl/evp.h>
#include <openssl/err.h>
"""

TYPES = """
typedef ... EVP_PKEY;
typedef ... EVP_PKEY_CTX;
typedef ... EVP_MD;
typedef ... EVP_MD_CTX;
typedef ... ENGINE;
static const int EVP_PKEY_ED25519;
"""

FUNCTIONS = """
EVP_PKEY* EVP_PKEY_new_raw_public_key(int type, ENGINE* engine, const unsigned char* key,
                                      size_t keylen);
void EVP_PKEY_free(EVP_PKEY* pkey);
EVP_MD_CTX* EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX* ctx);
int EVP_DigestVerifyInit(EVP_MD_CTX* ctx, EVP_PKEY_CTX** pctx, const EVP_MD* type,
                         ENGINE* engine, EVP_PKEY* pkey);
int EVP_DigestVerify(EVP_MD_CTX* ctx, const unsigned char* sig, size_t siglen,
                     const unsigned char* tbs, size_t tbslen);
void ERR_clear_error(void);
"""

CUSTOMIZATIONS = ""
