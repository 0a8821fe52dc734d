"""`getWeather`: current conditions for a place, behind a pluggable backend.

The shipped backend is Open-Meteo (geocoding + forecast, no API key). Its base URLs are settings so tests
and air-gapped installs can point them at a fake or a mirror.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Protocol

import httpx
import msgspec

from chatstream.tools.base import Tool, ToolError

if TYPE_CHECKING:
    from chatstream.tools.base import ToolContext

__all__ = ["OpenMeteoWeather", "WeatherBackend", "WeatherInput", "WeatherReport", "weather_tool"]

Unit = Literal["celsius", "fahrenheit"]


class WeatherReport(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """What the model gets back."""

    location: str
    latitude: float
    longitude: float
    time: str
    temperature: float
    temperature_unit: str
    conditions: str
    apparent_temperature: float | None = None
    humidity_percent: float | None = None
    wind_speed: float | None = None
    wind_speed_unit: str | None = None
    timezone: str | None = None


class WeatherBackend(Protocol):
    async def current(self, location: str, *, unit: Unit = "celsius") -> WeatherReport:
        """Current weather at `location` (a place name, optionally `"Paris, France"`).

        Raises `ToolError` with a message for the model when the place is unknown or the service fails.
        """
        ...


# -- Open-Meteo wire shapes: only the fields we read -----------------------------------------------------


class _Place(msgspec.Struct):
    name: str
    latitude: float
    longitude: float
    country: str | None = None
    country_code: str | None = None
    admin1: str | None = None
    timezone: str | None = None


class _Geocoding(msgspec.Struct):
    results: list[_Place] = []


class _Current(msgspec.Struct):
    time: str
    temperature_2m: float
    weather_code: int | None = None
    apparent_temperature: float | None = None
    relative_humidity_2m: float | None = None
    wind_speed_10m: float | None = None


class _CurrentUnits(msgspec.Struct):
    temperature_2m: str = "°C"
    wind_speed_10m: str = "km/h"


class _Forecast(msgspec.Struct):
    current: _Current
    current_units: _CurrentUnits = msgspec.field(default_factory=_CurrentUnits)
    timezone: str | None = None


_geocoding = msgspec.json.Decoder(_Geocoding)
_forecast = msgspec.json.Decoder(_Forecast)

# WMO weather interpretation codes, as documented by Open-Meteo.
_WMO = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "moderate drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "slight rain",
    63: "moderate rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "slight snowfall",
    73: "moderate snowfall",
    75: "heavy snowfall",
    77: "snow grains",
    80: "slight rain showers",
    81: "moderate rain showers",
    82: "violent rain showers",
    85: "slight snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with slight hail",
    99: "thunderstorm with heavy hail",
}


class OpenMeteoWeather:
    """Open-Meteo: free, keyless. Two calls: the place name to coordinates, then current conditions."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        geocoding_url: str = "https://geocoding-api.open-meteo.com/v1/search",
        forecast_url: str = "https://api.open-meteo.com/v1/forecast",
        timeout: float = 10.0,
    ) -> None:
        self._client = client
        self._geocoding_url = geocoding_url
        self._forecast_url = forecast_url
        self._timeout = timeout

    async def _get(self, url: str, params: dict[str, str | int]) -> bytes:
        try:
            response = await self._client.get(url, params=params, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise ToolError(f"the weather service is unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise ToolError(f"the weather service answered HTTP {response.status_code}")
        return response.content

    async def _place(self, location: str) -> _Place:
        # Open-Meteo searches by name only; "Paris, France" narrows the matches by country or region.
        name, *qualifiers = [p.strip() for p in location.split(",") if p.strip()] or [""]
        if not name:
            raise ToolError("no location given")
        body = await self._get(
            self._geocoding_url, {"name": name, "count": 10 if qualifiers else 1, "language": "en", "format": "json"}
        )
        try:
            places = _geocoding.decode(body).results
        except msgspec.DecodeError as exc:
            raise ToolError("the weather service sent an unreadable answer") from exc
        wanted = [q.lower() for q in qualifiers]
        for place in places:
            names = {(place.country or "").lower(), (place.country_code or "").lower(), (place.admin1 or "").lower()}
            if all(q in names for q in wanted):
                return place
        raise ToolError(f"no place called {location!r} was found")

    async def current(self, location: str, *, unit: Unit = "celsius") -> WeatherReport:
        place = await self._place(location)
        body = await self._get(
            self._forecast_url,
            {
                "latitude": str(place.latitude),
                "longitude": str(place.longitude),
                "current": "temperature_2m,relative_humidity_2m,apparent_temperature,weather_code,wind_speed_10m",
                "temperature_unit": unit,
                "timezone": "auto",
            },
        )
        try:
            forecast = _forecast.decode(body)
        except msgspec.DecodeError as exc:
            raise ToolError("the weather service sent an unreadable answer") from exc
        now = forecast.current
        return WeatherReport(
            location=", ".join(p for p in (place.name, place.admin1, place.country) if p),
            latitude=place.latitude,
            longitude=place.longitude,
            time=now.time,
            temperature=now.temperature_2m,
            temperature_unit=forecast.current_units.temperature_2m,
            conditions=_WMO.get(now.weather_code, "unknown") if now.weather_code is not None else "unknown",
            apparent_temperature=now.apparent_temperature,
            humidity_percent=now.relative_humidity_2m,
            wind_speed=now.wind_speed_10m,
            wind_speed_unit=forecast.current_units.wind_speed_10m,
            timezone=forecast.timezone or place.timezone,
        )


class WeatherInput(msgspec.Struct):
    city: Annotated[str, msgspec.Meta(min_length=1, description='A place name, e.g. "Paris" or "Paris, France".')]
    unit: Annotated[Unit, msgspec.Meta(description="Temperature unit.")] = "celsius"


def weather_tool(backend: WeatherBackend) -> Tool[WeatherInput]:
    async def handler(data: WeatherInput, ctx: ToolContext) -> WeatherReport:
        return await backend.current(data.city, unit=data.unit)

    return Tool("getWeather", "Get the current weather for a city.", WeatherInput, handler)
