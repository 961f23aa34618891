"""CloudWatch: DeleteAlarms takes the alarms' tags (the CBOR bridge is cbor_bridge.py)."""


def fix_cloudwatch_delete_alarms():
    """DeleteAlarms takes the alarms' tags with them (moto keeps them)."""
    from moto.cloudwatch.models import CloudWatchBackend

    delete = CloudWatchBackend.delete_alarms

    def delete_alarms(self, alarm_names):
        arns = [self.alarms[n].alarm_arn for n in alarm_names if n in self.alarms]
        delete(self, alarm_names)
        for arn in arns:
            self.tagger.delete_all_tags_for_resource(arn)

    CloudWatchBackend.delete_alarms = delete_alarms
