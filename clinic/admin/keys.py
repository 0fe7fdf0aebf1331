"""API keys in the admin: owners list them, create one (its secret shown once, on the page that
answers the creation, never stored) and revoke them. The same services as the API."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html

from clinic.admin import ClinicScopedAdmin
from clinic.api.authentication import ALL_SCOPES
from clinic.models import ApiKey
from clinic.services import api_key_create, api_key_revoke


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in ALL_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may do: read or write each part of the API.",
    )

    class Meta:
        model = ApiKey
        fields = ["clinic", "name", "scopes"]

    def _post_clean(self):
        # The key is made by api_key_create in save_model (it draws the secret and its digest).
        pass


@admin.register(ApiKey)
class ApiKeyAdmin(ClinicScopedAdmin):
    list_display = ["name", "prefix", "clinic", "scopes_shown", "created_at", "last_used_at", "state"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    actions = ["revoke"]
    readonly_fields = ["clinic", "prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at"]
    fields = ["clinic", "name", "prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at"]

    @admin.display(description="Scopes")
    def scopes_shown(self, key):
        return ", ".join(key.scopes)

    @admin.display(description="State", ordering="revoked_at")
    def state(self, key):
        if key.revoked_at:
            return format_html('<span class="key-revoked">Revoked</span>')
        return "Active"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["clinic", "name", "scopes"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        # Revoked, never deleted: the audit trail names keys by their prefix.
        return False

    def save_model(self, request, obj, form, change):
        if change:
            ApiKey.objects.filter(pk=obj.pk).update(name=obj.name)
            return
        key, raw = api_key_create(
            clinic=form.cleaned_data["clinic"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            created_by=request.user,
        )
        obj.pk, obj.prefix, obj._state.adding = key.pk, key.prefix, False
        request._api_key_secret = (key, raw)

    def response_add(self, request, obj, post_url_continue=None):
        key, raw = request._api_key_secret
        context = {
            **self.admin_site.each_context(request),
            "title": f"API key “{key.name}” created",
            "key": key,
            "secret": raw,
            "opts": self.model._meta,
        }
        # The secret is in this response only: never stored, never shown again.
        response = TemplateResponse(request, "admin/clinic/apikey_created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        done = 0
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(key=key)
            done += 1
        self.message_user(request, f"{done} key(s) revoked; requests with them now get 401.", messages.SUCCESS)
