"""Files that may hold secrets: reading them asks by default (the "secrets default")."""

from __future__ import annotations

from pathlib import Path

SECRET_NAMES = {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk",
                ".netrc", "_netrc", ".pgpass", "credentials", ".git-credentials", ".npmrc", ".pypirc"}
SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".ppk", ".asc", ".gpg")
SECRET_HOME_DIRS = (".ssh", ".aws", ".gnupg", ".config/gcloud", ".azure", ".kube", ".docker", ".password-store")
ENV_TEMPLATES = {".example", ".sample", ".template", ".dist", ".defaults"}


def is_secret_path(path: Path, home: Path) -> bool:
    name = path.name
    if name == ".env" or (name.startswith(".env.") and "." + name.rsplit(".", 1)[-1] not in ENV_TEMPLATES):
        return True
    if name in SECRET_NAMES and name != "credentials":
        return True
    if name.endswith(SECRET_SUFFIXES) and not name.endswith(".pub"):
        return True
    for d in SECRET_HOME_DIRS:
        base = home / d
        if path == base or base in path.parents:
            return True
    return False
