from django.contrib import admin

from .models import Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "plan", "seats")
    actions = ["make_enterprise"]

    @admin.action(description="Move to the enterprise plan")
    def make_enterprise(self, request, queryset):
        # A bulk UPDATE: one statement, one audit event per row it changes.
        queryset.update(plan="enterprise", seats=50)
