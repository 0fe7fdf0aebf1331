"""OpenAPI descriptions that drf-spectacular cannot infer."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "clinic.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key of one clinic (`manage.py create_api_key`): `Authorization: Bearer <key>`.",
        }
