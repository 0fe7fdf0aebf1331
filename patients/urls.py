from django.urls import path
from rest_framework.routers import SimpleRouter

from patients.api import ExportJobViewSet, PatientImportViewSet, PatientViewSet
from patients.privacy_api import PatientEraseView, PatientExportView

router = SimpleRouter(trailing_slash=True)
router.register("patients", PatientViewSet, basename="patient")
router.register("patient-imports", PatientImportViewSet, basename="patient-import")
router.register("exports", ExportJobViewSet, basename="export")

urlpatterns = [
    path("patients/<int:pk>/export/", PatientExportView.as_view(), name="patient-export"),
    path("patients/<int:pk>/erase/", PatientEraseView.as_view(), name="patient-erase"),
    *router.urls,
]
