### The security mails: subjects and plain-text bodies (lines under 76 characters).
### Spanish (es-US): medical-portal register, addressed as "usted".

mail-verify-subject = Confirme su correo electrónico para el portal del paciente
mail-connected-subject = Su cuenta del portal del paciente se conectó a un expediente médico
mail-attempt-subject = Alguien intentó conectarse a su expediente médico
mail-sign-in-subject = Nuevo inicio de sesión en su cuenta del portal del paciente
mail-verify-body =
    Hola:

    alguien (esperamos que usted) creó una cuenta en el portal del
    paciente con este correo electrónico
    el { $when }.
    Para confirmar la dirección, abra este enlace en las próximas
    { $hours } horas:

    { $link }

    Necesita una dirección confirmada para poder conectar su expediente
    médico. Si usted no creó esta cuenta, no haga caso de este mensaje.
mail-connected-body =
    Hola:

    su cuenta del portal del paciente se conectó a un expediente médico
    el { $when }.
    Puede verlo después de iniciar sesión:
    { $account }

    Si no fue usted, inicie sesión, cambie su contraseña y llame a la
    oficina de expedientes médicos (HIM).
mail-attempt-body =
    Hola:

    el { $when } alguien intentó conectar otra cuenta
    al expediente médico al que está conectada su cuenta del portal del
    paciente. No se conectó; la oficina de expedientes médicos (HIM)
    revisará el intento.

    Si fue usted o alguien a quien se lo pidió, no tiene que hacer nada.
    De lo contrario, llame a la oficina de HIM. Su cuenta:
    { $account }
mail-sign-in-body =
    Hola:

    se inició sesión en su cuenta del portal del paciente
    el { $when } desde un navegador o dispositivo
    que no se había usado antes con ella.

    Si no fue usted, inicie sesión, cambie su contraseña y llame a la
    oficina de expedientes médicos (HIM). Su cuenta:
    { $account }

## Los correos sobre expedientes y el acceso de representantes (sin datos del paciente).

mail-choose-notices =
    Puede elegir cuáles de estos correos recibe:
    { $notices }
mail-new-results-subject = Tiene resultados nuevos en su expediente
mail-new-results-body =
    Hola:

    tiene resultados nuevos en su expediente: hay algo nuevo que ver
    en un expediente médico que usted abre en el portal del paciente.
    Inicie sesión para verlo:
    { $records }
mail-download-ready-subject = Su descarga está lista
mail-download-ready-body =
    Hola:

    la descarga que usted pidió en el portal del paciente está lista
    ({ $when }).
    Inicie sesión para obtenerla; se guarda por un tiempo limitado:
    { $records }
mail-share-opened-subject = Se abrió un enlace que usted compartió
mail-share-opened-body =
    Hola:

    se abrió un enlace que usted creó para compartir un expediente
    médico, el { $when }.
    Inicie sesión para ver cuándo se usó o para desactivar el enlace:
    { $records }
mail-proxy-added-subject = Alguien ahora puede ver su expediente médico
mail-proxy-added-body =
    Hola:

    el { $when }
    alguien recibió acceso a su expediente médico en el portal del
    paciente, como su representante. Puede ver y retirar ese acceso
    aquí:
    { $proxies }

    Si no lo esperaba, retírelo allí y llame a la oficina de
    expedientes médicos (HIM).
mail-proxy-invitation-subject = Le invitan a ver un expediente médico en el portal del paciente
mail-proxy-invitation-body =
    Hola:

    alguien le invitó a ver su expediente médico en el portal del
    paciente, como su representante. Para aceptar, cree una cuenta con
    este correo electrónico (o inicie sesión) y abra este enlace en los
    próximos { $days } días:

    { $link }

    Se le pedirá la fecha de nacimiento de esa persona. Si no esperaba
    este mensaje, no haga caso de él: no pasará nada sin usted.
mail-access-changes-subject = El acceso a un expediente médico cambia pronto
mail-access-changes-proxy-body =
    Hola:

    en los próximos { $days } días cambia su acceso a un expediente
    médico que usted abre para un menor: a los 12 años la ley da al
    menor privacidad sobre parte de su atención, por lo que usted verá
    menos del expediente, y a los 18 su acceso termina. Inicie sesión
    para ver en qué día y qué cambia:
    { $proxies }
mail-access-changes-patient-body =
    Hola:

    en los próximos { $days } días cambia lo que sus padres o tutores
    pueden ver de su expediente médico: parte de su atención pasa a ser
    privada para usted, y cuando sea mayor de edad su acceso termina.
    Inicie sesión para ver en qué día y qué cambia:
    { $proxies }
mail-access-ended-proxy-subject = Su acceso a un expediente médico terminó
mail-access-ended-patient-subject = El acceso a su expediente médico cambió
mail-access-ended-adult-body =
    Hola:

    su acceso a un expediente médico que usted abría como padre, madre
    o tutor ha terminado, porque esa persona ya es mayor de edad.
    Esa persona puede volver a invitarle desde su propia cuenta.

    Su cuenta:
    { $account }
mail-access-ended-by-patient-body =
    Hola:

    su acceso a un expediente médico que usted abría para otra persona
    terminó el { $when }: esa persona lo retiró.
    Pregúntele si cree que se trata de un error.

    Su cuenta:
    { $account }
mail-access-ended-patient-body =
    Hola:

    ahora que usted es mayor de edad, el acceso que sus padres o
    tutores tenían a su expediente médico ha terminado.
    Puede invitar a alguien a ver su expediente aquí:
    { $proxies }
mail-proxy-expires-subject = Pronto termina el acceso de alguien a su expediente
mail-proxy-expires-body =
    Hola:

    en los próximos { $days } días termina el acceso de una persona a
    quien usted autorizó a ver su expediente médico. Para mantenerlo,
    renuévelo aquí:
    { $proxies }
