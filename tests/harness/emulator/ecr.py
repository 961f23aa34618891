"""ECR: PutImageScanningConfiguration without scanOnPush turns scanning off."""


def fix_ecr_scan_on_push():
    """ECR PutImageScanningConfiguration with `scanOnPush` false turns
    scanning off. The AWS SDKs leave a boolean member out of the request
    when it is false (its default), so the configuration arrives as `{}`;
    moto 5.2.5 takes an empty configuration for no change at all and leaves
    scanning on. ECR reads the missing member as false."""
    from moto.ecr.models import Repository

    def update(self, image_scanning_configuration):
        if image_scanning_configuration is not None:
            self.image_scanning_configuration = {"scanOnPush": bool(image_scanning_configuration.get("scanOnPush", False))}

    Repository._update_image_scanning_configuration = update
