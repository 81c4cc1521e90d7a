"""Platform tokens encrypted at rest with Fernet; MultiFernet for key rotation.

``TOKEN_ENCRYPTION_KEYS`` lists keys newest first: new tokens are encrypted with the first,
any listed key decrypts, and :meth:`TokenVault.rotate` re-encrypts old rows with the newest.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.errors import ConfigError, TokenDecryptionError
from app.models import PlatformAccount
from app.providers.base import AccountCredentials, TokenSet

#: The key used when none is configured, so the embedded demo works with no set-up.
#: It is public, hence worthless: production must set TOKEN_ENCRYPTION_KEYS.
DEMO_KEY = "ZGVtby1rZXktbm90LWZvci1wcm9kdWN0aW9uLXVzZSE="


def generate_key() -> str:
    """A fresh key for TOKEN_ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()


class TokenVault:
    """Encrypts and decrypts token strings; the only place that ever sees plaintext tokens."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigError("TOKEN_ENCRYPTION_KEYS", "", "at least one key is required")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as exc:
            raise ConfigError("TOKEN_ENCRYPTION_KEYS", "***", str(exc)) from None

    @classmethod
    def from_settings(cls, settings: object) -> TokenVault:
        keys = getattr(settings, "token_encryption_keys", ()) or (DEMO_KEY,)
        return cls(keys)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise TokenDecryptionError(
                "a stored token cannot be decrypted with any key in TOKEN_ENCRYPTION_KEYS"
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt with the newest key (keeps the original timestamp)."""
        return self._fernet.rotate(ciphertext.encode()).decode()

    def store_tokens(self, account: PlatformAccount, tokens: TokenSet) -> None:
        """Write new tokens to the account; a missing refresh token keeps the stored one."""
        account.access_token_encrypted = self.encrypt(tokens.access_token)
        if tokens.refresh_token:
            account.refresh_token_encrypted = self.encrypt(tokens.refresh_token)
        if tokens.expires_at is not None:
            account.expires_at = tokens.expires_at
        if tokens.refresh_expires_at is not None:
            account.refresh_expires_at = tokens.refresh_expires_at

    def credentials(self, account: PlatformAccount) -> AccountCredentials:
        """Decrypted credentials for a publisher call."""
        refresh = account.refresh_token_encrypted
        return AccountCredentials(
            account_id=account.id,
            platform=account.platform,
            external_id=account.external_id,
            access_token=self.decrypt(account.access_token_encrypted),
            refresh_token=self.decrypt(refresh) if refresh else None,
            expires_at=account.expires_at,
            service_url=account.service_url,
        )
