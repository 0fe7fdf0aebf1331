"""Catalog admin: everyone with access sees the shared catalog and their clinic's additions;
only superusers edit the shared rows (they are loaded from catalog_data/ for every clinic),
owners and therapists add and edit their own clinic's rows."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q

from clinic.admin import user_clinic_ids
from clinic.models import Clinic
from treatments.models import AcupuncturePoint, ArtProtocol, BodyRegion, Modality, Muscle, TriggerPoint
from treatments.selectors import catalog_search


@admin.register(Modality)
class ModalityAdmin(admin.ModelAdmin):
    list_display = ["name", "code"]
    search_fields = ["name", "code"]


class CatalogAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "clinic", "is_active"]
    list_filter = ["is_active"]
    # The search box and the note's autocomplete run `catalog_search` (names, codes, aliases);
    # `search_fields` only switches them on.
    search_fields = ["name", "code", "aliases"]
    search_related: tuple[str, ...] = ()

    def get_search_results(self, request, queryset, search_term):
        return catalog_search(queryset, search_term, related=self.search_related), False

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("clinic")
        if request.user.is_superuser:
            return qs
        return qs.filter(Q(clinic__isnull=True) | Q(clinic__in=user_clinic_ids(request)))

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.clinic_id is None and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.clinic_id is None and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if not request.user.is_superuser and "clinic" in form.base_fields:
            form.base_fields["clinic"].required = True
        return form

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            if db_field.related_model is Clinic:
                kwargs["queryset"] = Clinic.objects.filter(id__in=user_clinic_ids(request))
            elif hasattr(db_field.related_model.objects, "for_clinic"):
                kwargs["queryset"] = db_field.related_model.objects.filter(
                    Q(clinic__isnull=True) | Q(clinic__in=user_clinic_ids(request))
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if not request.user.is_superuser and hasattr(db_field.related_model.objects, "for_clinic"):
            kwargs["queryset"] = db_field.related_model.objects.filter(
                Q(clinic__isnull=True) | Q(clinic__in=user_clinic_ids(request))
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(BodyRegion)
class BodyRegionAdmin(CatalogAdmin):
    list_display = ["name", "code", "parent", "clinic", "is_active"]
    search_related = ("parent",)


@admin.register(Muscle)
class MuscleAdmin(CatalogAdmin):
    list_display = ["name", "code", "kind", "region", "clinic", "is_active"]
    list_filter = ["kind", "region", "is_active"]
    search_related = ("region",)


@admin.register(TriggerPoint)
class TriggerPointAdmin(CatalogAdmin):
    list_display = ["name", "code", "muscle", "clinic", "is_active"]
    search_related = ("muscle",)
    filter_horizontal = ["referral_regions"]


@admin.register(ArtProtocol)
class ArtProtocolAdmin(CatalogAdmin):
    list_display = ["name", "code", "structure", "clinic", "is_active"]
    search_related = ("structure",)


@admin.register(AcupuncturePoint)
class AcupuncturePointAdmin(CatalogAdmin):
    list_display = ["code", "name", "meridian", "region", "avoid_in_pregnancy", "clinic", "is_active"]
    list_filter = ["meridian", "avoid_in_pregnancy", "is_active"]
