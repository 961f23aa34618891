"""Secrets Manager: a name scheduled for deletion is not free."""


def fix_create_over_deleted_secret():
    """CreateSecret of a name whose secret is scheduled for deletion fails
    with InvalidRequestException, as Secrets Manager does ("You can't create
    this secret because a secret with this name is already scheduled for
    deletion."; the API reference's InvalidRequestException: "The secret is
    scheduled for deletion"), until RestoreSecret or the end of the recovery
    window. moto 5.2.5 answers ResourceExistsException, or, when the request
    token matches a version, hands the deleted secret back as created."""
    from moto.secretsmanager.exceptions import InvalidRequestException
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.create_secret

    def create_secret(self, name, *args, **kwargs):
        existing = self.secrets.get(name)
        if existing is not None and getattr(existing, "deleted_date", None):
            raise InvalidRequestException(
                "You can't create this secret because a secret with this name is already scheduled for deletion."
            )
        return original(self, name, *args, **kwargs)

    SecretsManagerBackend.create_secret = create_secret
