from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from portal.pagination import InvalidCursor, keyset_page


class KeysetCursorPagination(BasePagination):
    """`{"next", "previous", "results"}` over `portal.pagination.keyset_page`.

    The view names its order with `get_keyset_ordering(request)` (default newest first);
    `page_size` may be asked for up to `max_page_size`."""

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    default_page_size = 50
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        ordering = view.get_keyset_ordering(request) if hasattr(view, "get_keyset_ordering") else ["-id"]
        try:
            size = int(request.query_params.get(self.page_size_query_param, self.default_page_size))
        except ValueError:
            size = self.default_page_size
        size = max(1, min(size, self.max_page_size))
        try:
            self.page = keyset_page(
                queryset, ordering=ordering, cursor=request.query_params.get(self.cursor_query_param), page_size=size
            )
        except InvalidCursor:
            raise NotFound("Invalid cursor.") from None
        return self.page.items

    def _link(self, cursor):
        if cursor is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, cursor)

    def get_paginated_response(self, data):
        return Response(
            {
                "next": self._link(self.page.next_cursor),
                "previous": self._link(self.page.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }
