"""IAM: ListInstanceProfiles honours PathPrefix."""


def fix_list_instance_profiles():
    """IAM ListInstanceProfiles honours PathPrefix, as IAM does (moto 5.2.5
    lists every profile whatever the prefix)."""
    from moto.iam.responses import IamResponse

    original = IamResponse.list_instance_profiles

    def listed(self):
        result = original(self)
        prefix = self._get_param("PathPrefix", "/")
        profiles = [p for p in result.result["InstanceProfiles"] if p.path.startswith(prefix)]
        result.result["InstanceProfiles"] = profiles
        return result

    IamResponse.list_instance_profiles = listed
