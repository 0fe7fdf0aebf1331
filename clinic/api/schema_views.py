"""Who may read the OpenAPI schema (`/api/schema/`) and its docs (`/api/docs/`).

Public when `API_DOCS_PUBLIC` (the default in development and test, where Schemathesis and
`make schema-check` read it); otherwise, as in production by default, a signed-in staff
member of an active clinic or a valid API key. Anyone else gets 401 (403 for a signed-in
user of no clinic) in the API's JSON error format, even on the HTML docs page.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer

from clinic.models import ApiKey, Membership


class SchemaAccess(BasePermission):
    message = "The API schema and docs are for signed-in staff and API keys."

    def has_permission(self, request, view) -> bool:
        if settings.API_DOCS_PUBLIC or isinstance(request.auth, ApiKey):
            return True
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if user.is_superuser:
            return True
        return Membership.objects.filter(user=user, is_active=True, clinic__is_active=True).exists()


class SchemaAccessMixin:
    permission_classes = [SchemaAccess]

    def handle_exception(self, exc):
        # The refusal in the API's error format, not as YAML or the docs' HTML template.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)


class SchemaView(SchemaAccessMixin, SpectacularAPIView):
    pass


class SchemaDocsView(SchemaAccessMixin, SpectacularSwaggerSplitView):
    pass
