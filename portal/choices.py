from django.db import models


class Region(models.TextChoices):
    NOAM = "noam", "Americas (noam)"
    EMEA = "emea", "Europe, Middle East, Africa (emea)"
    APAC = "apac", "Asia Pacific (apac)"


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    TECHNICIAN = "technician", "Technician"
    USER = "user", "User"


class ActorType(models.TextChoices):
    USER = "user", "User"
    TOKEN = "token", "API token"
    PHONE = "phone", "Phone"
    SYSTEM = "system", "System"
