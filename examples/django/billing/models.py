"""The seed's models: tenants, their users and subscriptions. No audit code:
Trail's triggers record every change to billing_subscription."""
from django.conf import settings
from django.db import models


class Tenant(models.Model):
    slug = models.SlugField(primary_key=True)
    name = models.CharField(max_length=100)


class Profile(models.Model):
    """Which tenant a user works in."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)


class Subscription(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    plan = models.CharField(max_length=20, default="free")
    seats = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
