"""An admin command, audited like a request: its changes name it as actor."""
from django.core.management.base import BaseCommand

from billing.models import Subscription
from billing.trail import acting


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("tenant")

    def handle(self, *args, **options):
        with acting("system:close_trials", tenant=options["tenant"]):
            n = Subscription.objects.filter(tenant_id=options["tenant"], plan="trial").update(plan="free")
        self.stdout.write("%d trials closed\n" % n)
