### The page frame, errors, sign-in failures and words every page shares.
### Spanish (es-US): medical-portal register, addressed as "usted".

skip-to-main = Ir al contenido principal

language-switch-label = Idioma
language-unknown = Ese idioma no está disponible. Elija English o Español.

sign-in = Iniciar sesión
sign-out = Cerrar sesión

create-account = Crear una cuenta

continue = Continuar

try-again = Intentar de nuevo

footer-help = ¿Tiene preguntas sobre su expediente? Gestión de Información de Salud de Harbor Health: 360-555-0100. Este sitio no es para emergencias: llame al 911.

error-from-app = Si una aplicación lo trajo hasta aquí, regrese a la aplicación e inténtelo de nuevo, o comuníquese con quien la desarrolló.
error-too-many-title = Espere un momento, por favor
error-too-many = Hubo demasiados intentos. Espere { $seconds } segundos e inténtelo de nuevo.
error-bad-request-title = Algo no está bien
error-forbidden-title = No permitido
error-unavailable-title = Inténtelo de nuevo
error-unavailable = Algo falló de nuestro lado. Inténtelo de nuevo en un momento.
error-csrf = Este formulario venció o no provino de este sitio. Regrese, vuelva a cargar la página e inténtelo de nuevo.
error-control-character = Algo que escribió contiene un carácter que no se puede usar aquí (un carácter de control invisible, como NUL). Quítelo e inténtelo de nuevo.
error-not-found-title = No encontrado
error-not-found = Esa página no existe.
error-page-not-found-title = Página no encontrada
error-page-not-found = No encontramos esa página. Puede que haya cambiado de lugar o que la dirección tenga un error.
error-record-not-available-title = Este expediente no está disponible para usted en este momento
error-record-not-available = Su acceso a este expediente cambió; por ejemplo, cuando un menor cumple 12 o 18 años, o cuando termina el acceso. Gestión de Información de Salud de Harbor Health puede ayudarle: 360-555-0100.

app-not-yours = Esa aplicación no es una de las que usted autorizó.

oidc-failed-title = No se completó el inicio de sesión
oidc-unreachable-named = En este momento no podemos comunicarnos con el servicio de inicio de sesión (“{ $service }”). Inténtelo de nuevo en unos minutos o inicie sesión con una cuenta de Portico.
oidc-state-mismatch = Este enlace de inicio de sesión no es válido para este navegador, o ya se usó. Regrese a la página de inicio de sesión e inténtelo de nuevo.
oidc-cancelled = El inicio de sesión se canceló o no se permitió, así que usted no ha iniciado sesión. Puede intentarlo de nuevo o iniciar sesión con una cuenta de Portico.
oidc-provider-error = El servicio de inicio de sesión no pudo identificarlo, así que usted no ha iniciado sesión. Inténtelo más tarde o inicie sesión con una cuenta de Portico.
oidc-wrong-issuer = Esta respuesta no provino del servicio de inicio de sesión esperado. Inténtelo de nuevo.
oidc-unreachable = En este momento no podemos comunicarnos con el servicio de inicio de sesión. Inténtelo de nuevo en unos minutos.
oidc-expired = El inicio de sesión tardó demasiado. Empiece de nuevo, por favor.
oidc-not-confirmed = No pudimos confirmar este inicio de sesión con el servicio correspondiente, así que usted no ha iniciado sesión. Empiece de nuevo, por favor.

and-joiner = {" "}y{" "}

from-sources = Proviene de { $sources }

about-record = Acerca de este expediente

right-to-copy = Usted tiene derecho a recibir una copia del expediente completo. Pida a Gestión de Información de Salud de Harbor Health una “divulgación de información” por teléfono, por correo electrónico o en persona.

not-for-emergencies = No es para emergencias.
