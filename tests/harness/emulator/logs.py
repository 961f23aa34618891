"""CloudWatch Logs: AssociateKmsKey and DisassociateKmsKey, which moto lacks."""


def add_logs_kms_calls():
    """CloudWatch Logs AssociateKmsKey / DisassociateKmsKey (moto 5.2.5
    answers NotImplemented): the log group's KMS key, as DescribeLogGroups
    then reports it."""
    from moto.logs.exceptions import ResourceNotFoundException
    from moto.logs.responses import LogsResponse

    def group(self):
        found = self.logs_backend.groups.get(self._get_param("logGroupName"))
        if found is None:
            raise ResourceNotFoundException()
        return found

    def associate_kms_key(self):
        group(self).kms_key_id = self._get_param("kmsKeyId")
        return ""

    def disassociate_kms_key(self):
        group(self).kms_key_id = None
        return ""

    LogsResponse.associate_kms_key = associate_kms_key
    LogsResponse.disassociate_kms_key = disassociate_kms_key
