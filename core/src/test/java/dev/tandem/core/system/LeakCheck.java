package dev.tandem.core.system;

import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * After each test, every Tandem off-heap region and every Chronicle reference-counted resource was released.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.TYPE)
@ExtendWith(LeakCheckExtension.class)
public @interface LeakCheck
{
}
